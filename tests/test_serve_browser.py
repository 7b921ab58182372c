"""The web page at / and the API document at /docs in headless Chromium: Debian's `chromium`,
driven by playwright-python (which downloads no browser of its own). The page is served by a
real uvicorn with the real shared models; what it draws is read back from the page and from
screenshots' pixels. `.ci/run` installs Chromium when it is missing and sets
HRPOSE_REQUIRE_BROWSER, so that there a missing browser fails instead of skipping."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

from hrpose.inference.draw import LEFT, RIGHT
from hrpose.io import read_image
from hrpose.skeletons import get_skeleton

from .helpers import shared_data
from .serving import serving, tinypose_settings

CHROMIUM = Path(os.environ.get("HRPOSE_CHROMIUM", "/usr/bin/chromium"))
COCO = get_skeleton("coco")


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = (f"no Chromium at {CHROMIUM}: apt-get install chromium (or set "
                   "HRPOSE_CHROMIUM); .ci/run installs it")
        if os.environ.get("HRPOSE_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def estimator(served_estimator):
    return served_estimator


@pytest.fixture(scope="module")
def server(estimator):
    with serving(tinypose_settings(), estimator) as url:
        yield url


@pytest.fixture(scope="module")
def demo() -> Path:
    return shared_data("images", "hrnet_demo.jpg")


@contextmanager
def browser(chromium: Path, *flags: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(chromium),
                                     args=["--no-sandbox", "--disable-dev-shm-usage", *flags])
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser: object, url: str) -> tuple[object, list[str], list[str]]:
    """The page at `url`, the page's script errors and every request it made elsewhere (it
    must work offline: no CDN)."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    foreign: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(
        (url, "data:", "blob:")) else None)
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    return page, errors, foreign


def decode_png(data: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
                        cv2.COLOR_BGR2RGB)


def canvas_pixels(page: object) -> tuple[np.ndarray, np.ndarray]:
    """The canvas as the page holds it (toDataURL) and as the screen shows it (a screenshot
    scaled to the canvas' own size)."""
    url = page.evaluate("document.getElementById('view').toDataURL('image/png')")
    held = decode_png(base64.b64decode(url.split(",", 1)[1]))
    shown = decode_png(page.locator("#view").screenshot())
    shown = cv2.resize(shown, (held.shape[1], held.shape[0]), interpolation=cv2.INTER_AREA)
    return held, shown


def side_colour(image: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return (np.abs(image.astype(int) - colour) <= 40).all(-1)


def assert_skeleton_drawn(pixels: np.ndarray, original: np.ndarray, keypoints: np.ndarray
                          ) -> None:
    """Limbs of both side colours lie on the person's joints, and the photo itself has
    (almost) none of those colours: they are the drawing."""
    for colour in (LEFT, RIGHT):
        drawn, before = side_colour(pixels, colour), side_colour(original, colour)
        assert drawn.sum() > 150 and before.sum() < drawn.sum() / 10, (colour, drawn.sum())
        ys, xs = np.nonzero(drawn & ~before)
        lo, hi = keypoints[:, :2].min(0) - 12, keypoints[:, :2].max(0) + 12
        inside = (xs >= lo[0]) & (xs <= hi[0]) & (ys >= lo[1]) & (ys <= hi[1])
        assert inside.mean() > 0.97, (colour, inside.mean())
    # The left forearm's limb passes through the middle of the left elbow and wrist.
    elbow, wrist = (keypoints[COCO.joints.index(j), :2]
                    for j in ("left_elbow", "left_wrist"))
    x, y = np.round((elbow + wrist) / 2).astype(int)
    assert side_colour(pixels[y - 2 : y + 3, x - 2 : x + 3], LEFT).any()


def test_the_page_draws_the_skeleton_of_an_uploaded_photo(chromium, server, estimator, demo):
    with browser(chromium) as b:
        page, errors, foreign = open_page(b, server)
        assert "tinypose_256x192" in page.text_content("#model")
        page.set_input_files("#file", str(demo))
        page.wait_for_function("window.hrpose.drawn > 0", timeout=30_000)
        result = page.evaluate("window.hrpose.last")
        shown_count = page.text_content("#people")
        held, shown = canvas_pixels(page)
    assert not errors and not foreign, (errors, foreign)
    original = read_image(demo)
    expected = estimator(original, color="rgb")
    assert shown_count == "1" and len(result["people"]) == len(expected) == 1
    keypoints = np.array(result["people"][0]["keypoints"])
    np.testing.assert_allclose(keypoints, expected[0].keypoints, atol=0.0051)
    assert held.shape == original.shape
    for pixels in (held, shown):
        assert_skeleton_drawn(pixels, original, keypoints)


def test_a_file_that_is_not_an_image_gets_a_message_and_clears_the_last_picture(
        chromium, server, demo, tmp_path):
    notes = tmp_path / "notes.jpg"             # a picture's name, not a picture's bytes
    notes.write_text("not a picture")
    with browser(chromium) as b:
        page, errors, foreign = open_page(b, server)
        page.set_input_files("#file", str(demo))
        page.wait_for_function("window.hrpose.drawn > 0", timeout=30_000)
        assert page.text_content("#people") == "1"
        page.set_input_files("#file", str(notes))
        page.wait_for_function("window.hrpose.errors > 0", timeout=10_000)
        status = page.text_content("#status")
        figures = [page.text_content(f"#{i}") for i in ("people", "server-ms", "latency")]
        hint_hidden = page.evaluate("document.getElementById('hint').hidden")
        held, _ = canvas_pixels(page)
    assert not errors and not foreign, (errors, foreign)   # nothing thrown uncaught
    assert status.startswith("notes.jpg: not an image") and "…" not in status, status
    assert figures == ["–", "–", "–"] and not hint_hidden
    assert held.max() == 0                                 # the photo is gone


def y4m_clip(path: Path, frame: np.ndarray, count: int = 10) -> None:
    """A raw YUV 4:2:0 video of `frame` repeated: what Chromium's fake camera plays."""
    h, w = frame.shape[:2]
    yuv = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(count):
            f.write(b"FRAME\n" + yuv)


def test_the_webcam_streams_frames_and_draws_the_tracked_person(chromium, server, estimator,
                                                                demo, tmp_path):
    person = read_image(demo)                       # 359 x 423, placed on a 640 x 480 frame
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[30:453, 140:499] = person
    y4m_clip(tmp_path / "camera.y4m", frame)
    with browser(chromium, "--use-fake-device-for-media-stream",
                 "--use-fake-ui-for-media-stream",
                 f"--use-file-for-fake-video-capture={tmp_path / 'camera.y4m'}") as b:
        page, errors, foreign = open_page(b, server)
        page.click("#camera")
        page.wait_for_function("window.hrpose.frames >= 4 && window.hrpose.drawn >= 4",
                               timeout=60_000)
        result = page.evaluate("window.hrpose.last")
        held, shown = canvas_pixels(page)
        page.click("#camera")                       # stop
        page.wait_for_function("document.getElementById('camera').textContent === "
                               "'Start webcam'")
    assert not errors and not foreign, (errors, foreign)
    assert result["image"] == {"width": 640, "height": 480}
    assert [p["track_id"] for p in result["people"]] == [0]      # one person, one track
    expected = estimator(frame, color="rgb")[0].keypoints
    keypoints = np.array(result["people"][0]["keypoints"])
    # The browser's JPEG of the camera frame, not the frame itself: close, not equal.
    assert np.median(np.abs(keypoints[:, :2] - expected[:, :2])) < 4
    for pixels in (held, shown):
        assert_skeleton_drawn(pixels, frame, keypoints)


def test_the_api_document_renders_offline(chromium, server):
    with browser(chromium) as b:
        page = b.new_page()
        foreign: list[str] = []
        page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(
            (server, "data:")) else None)
        page.goto(server + "/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        paths = page.locator(".opblock-summary-path").all_text_contents()
    assert not foreign, foreign
    assert {"/v1/pose", "/v1/pose/draw", "/v1/model", "/readyz"} <= {p.strip() for p in paths}


def test_the_page_draws_a_whole_body_model_in_its_part_styles(chromium, demo, tmp_path):
    """A 133-joint model (random weights, every joint drawn: threshold 0): the page draws the
    face thin and white and each hand in its own colour, as `hrpose infer` draws them."""
    from hrpose.inference.draw import PART_STYLES, draw_found
    from hrpose.inference.options import EstimatorOptions
    from hrpose.inference.person import Person
    from hrpose.models.checkpoint import save_weights
    from hrpose.models.loading import build_model
    from hrpose.serve.settings import ServeSettings
    from hrpose.skeletons import COCO_WHOLEBODY

    name = "hrnet_w32_256x192_coco_wholebody"
    model = tmp_path / "wholebody.safetensors"
    save_weights(model, build_model(name).state_dict(), {"model": name})
    settings = ServeSettings(model=str(model), options=EstimatorOptions(detector=None),
                             keypoint_threshold=0.0, person_threshold=0.0)
    with serving(settings) as url, browser(chromium) as b:
        page, errors, foreign = open_page(b, url)
        served = page.evaluate("fetch('/v1/model').then(r => r.json())")["keypoints"]
        page.set_input_files("#file", str(demo))
        page.wait_for_function("window.hrpose.drawn > 0", timeout=60_000)
        result = page.evaluate("window.hrpose.last")
        held, _ = canvas_pixels(page)
    assert not errors and not foreign, (errors, foreign)
    assert served["set"] == "coco_wholebody" and len(served["joint_sizes"]) == 133
    person = result["people"][0]
    ours = draw_found(read_image(demo), [Person(np.array(person["box"], np.float32),
                                                np.array(person["keypoints"], np.float32),
                                                person["score"])], COCO_WHOLEBODY, 0.0, 0.0)
    for part in ("left_hand", "right_hand"):
        colour = PART_STYLES[part].colour
        page_count = side_colour(held, colour).sum()
        our_count = side_colour(ours, colour).sum()
        assert page_count > 30 and 0.5 < page_count / max(our_count, 1) < 2, (part, page_count,
                                                                               our_count)
