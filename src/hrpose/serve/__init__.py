"""`hrpose serve`: the HTTP and WebSocket pose service (FastAPI on uvicorn).

settings.py  what the command line sets, and the estimator it opens
batcher.py   one thread per model; jobs of concurrent requests become one model call
service.py   the model side: detector and pose batchers, warm-up, results as JSON
uploads.py   bodies read under a size limit, multipart in memory, images and boxes checked
metrics.py   Prometheus counters and histograms
app.py       the FastAPI application: routes, the API key, CORS, errors, the web page
static/      the web page (plain HTML, CSS and JavaScript, no build step, works offline)
"""
