"""The ground floor for files: atomic writes, JSON, images (read upright by their EXIF
orientation, written atomically). Every module that reads or writes a file uses these."""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import orjson
import simplejpeg

from .errors import HrposeError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path`; renames it over `path` only if the block succeeds,
    so a crash or a kill never leaves a half-written file under the final name. The file gets
    the mode a plain `open` would give it (0666 less the umask): mkstemp's 0600 would keep a
    run's files from the teammates who read it. A failed write (a full disk, a quota) is one
    HrposeError naming `path`; the temporary file is removed and `path` keeps what it held."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as e:
        raise write_failure(e, path) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except Exception as e:
        failure = write_failure(e, path)
        if failure is None:
            raise
        raise failure from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


TMP_SUFFIX = ".tmp"


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Deletes what a killed process left of `atomic_path`'s temporary files in `folder`."""
    removed = []
    for stale in Path(folder).glob(f".*{TMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            stale.unlink()
            removed.append(stale)
    return removed


def _full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


def write_failure(error: Exception, path: Path) -> HrposeError | None:
    """The one-line error for a write of `path` that failed with `error`, or None when the
    error is not a failed write. torch.save reports one as RuntimeError, safetensors and
    OpenVINO as their own errors (the OS error in the text); a full disk is the likely cause,
    and worth saying."""
    full = _full(path.parent)
    if not (isinstance(error, OSError) or _io_failure(error) or full):
        return None
    code = error.errno if isinstance(error, OSError) else None
    if code is None and (found := re.search(r"os error (\d+)", str(error))):
        code = int(found.group(1))              # safetensors: "... (os error 28)"
    if code in (errno.ENOSPC, errno.EDQUOT):
        reason = f"{os.strerror(code)}: the disk is full"
    elif code:
        reason = os.strerror(code)
    else:
        reason = "no space left on the disk" if full else str(error).splitlines()[0][:120]
    return HrposeError(f"{path}: cannot write ({reason}); the previous file, if any, is "
                       "unchanged")


def _io_failure(error: Exception) -> bool:
    text = str(error)
    return not isinstance(error, HrposeError) and ("os error" in text or "I/O error" in text
                                                   or "write failed" in text)


def _umask() -> int:
    mask = os.umask(0o022)      # reading the umask means setting it; put it back at once
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj: object, indent: bool = False) -> Path:
    """`obj` as JSON at `path`, atomically (orjson: numpy arrays and scalars are written as
    lists and numbers)."""
    option = orjson.OPT_SERIALIZE_NUMPY | (orjson.OPT_INDENT_2 if indent else 0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(orjson.dumps(obj, option=option) + (b"\n" if indent else b""))
    return Path(path)


def read_json(path: str | Path) -> object:
    """Parse a JSON file (orjson: COCO-size files parse about twice as fast as with json). A
    file too large for the memory left (parsed JSON takes several times its size) is refused
    before it is read, rather than ending in the kernel's OOM kill."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            limit = max_json_bytes()
            if size > limit:
                raise HrposeError(f"{path}: {size / 2**20:,.0f} MiB of JSON is more than this "
                                  f"machine can parse ({limit / 2**20:,.0f} MiB: an eighth of "
                                  "the available memory; HRPOSE_MAX_JSON_BYTES sets it)")
            data = f.read()
        # Parsed JSON holds no cycles, and the cyclic collector, run again and again while
        # millions of containers are created, takes about half of a large file's parse time.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return orjson.loads(data)
        finally:
            if collecting:
                gc.enable()
    except (FileNotFoundError, IsADirectoryError):
        raise HrposeError(f"{path}: no such file") from None
    except OSError as e:
        raise HrposeError(f"{path}: cannot read ({e.strerror})") from None
    except MemoryError:
        raise HrposeError(f"{path}: too large to parse in the memory available") from None
    except orjson.JSONDecodeError as e:
        raise HrposeError(f"{path}: not valid JSON ({e})") from None


def read_yaml(path: str | Path, what: str = "file") -> object:
    """Parse a YAML (or JSON) file with yaml.safe_load (no code in it runs). A missing or
    unreadable file, one that is not UTF-8 text and one that is not valid YAML are each one
    line naming the file (and, for YAML, the line); `what` names the file in the first."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        raise HrposeError(f"{path}: {what} not found or unreadable") from None
    except UnicodeDecodeError as e:
        raise HrposeError(f"{path}: not a text file (byte {e.start} is not UTF-8)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark else ""
        raise HrposeError(f"{path}: not valid YAML{at}") from None


def max_json_bytes() -> int:
    """The largest JSON file read_json parses: HRPOSE_MAX_JSON_BYTES, else an eighth of the
    available memory (COCO's 238 MB train annotations need about 2 GB parsed)."""
    if os.environ.get("HRPOSE_MAX_JSON_BYTES"):
        return int(os.environ["HRPOSE_MAX_JSON_BYTES"])
    try:
        with open("/proc/meminfo") as f:
            available = next(int(line.split()[1]) * 1024 for line in f
                             if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    return available // 8


# The image files hrpose reads (by suffix).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

# Pillow's decompression-bomb limit: an image whose header states more pixels is refused
# before any pixel is decoded (other formats meet cv2's own header check, 2^30 pixels).
MAX_IMAGE_PIXELS = int(os.environ.get("HRPOSE_MAX_IMAGE_PIXELS", 178_956_970))


def read_image(path: str | Path) -> np.ndarray:
    """An image file -> RGB uint8 (H, W, 3), turned upright by its EXIF orientation. Grayscale,
    RGBA and 16-bit files become 8-bit RGB. Missing, undecodable or oversized files (more than
    MAX_IMAGE_PIXELS stated in the header, checked before decoding) raise HrposeError.

    JPEGs go through simplejpeg (libjpeg-turbo, RGB out, pixel-identical to cv2 and about 12%
    faster here) unless their EXIF says they are rotated; other formats through cv2, which
    applies the orientation."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError:
        raise HrposeError(f"{path}: image not found or unreadable") from None
    return decode_image(data, str(path))


def decode_image(data: bytes, name: str = "image", max_pixels: int | None = None) -> np.ndarray:
    """`read_image` for bytes in memory; `name` labels errors. `max_pixels` (default
    MAX_IMAGE_PIXELS) is checked against the header's size before anything is decoded."""
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    size = image_size(data)
    if size is None:          # never decoded unchecked: the size bounds what decoding costs
        kind = image_format(data)
        raise HrposeError(f"{name}: cannot decode the image (" + (
            f"a corrupt {kind.upper()}: its header states no size" if kind else
            "not a JPEG, PNG, BMP, GIF, WebP or TIFF file") + ")")
    if size[0] * size[1] > limit:
        raise HrposeError(f"{name}: the image states {size[0]}x{size[1]} pixels, more than the "
                          f"limit of {limit:,}"
                          + (" (HRPOSE_MAX_IMAGE_PIXELS)" if max_pixels is None else ""))
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        _check_png_chunks(data, name)
    if data[:2] == b"\xff\xd8" and jpeg_orientation(data) == 1:
        try:
            return simplejpeg.decode_jpeg(data, "RGB")
        except ValueError:
            pass                      # let cv2 try (it decodes some files libjpeg rejects)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    except cv2.error as e:            # cv2's own size limit, a codec assertion
        reason = str(e).strip().splitlines()[-1][:120]
        raise HrposeError(f"{name}: cannot decode the image ({reason})") from None
    if image is None or image.size == 0:
        raise HrposeError(f"{name}: cannot decode the image (corrupt or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _check_png_chunks(data: bytes, name: str) -> None:
    """Every PNG chunk fits in the file. cv2's decoder allocates what a chunk's length field
    claims (up to 2 GiB) before it finds the file shorter: a 4 KB file must not cost that."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if pos + 12 + length > len(data):
            raise HrposeError(f"{name}: corrupt PNG (chunk {kind!r} at byte {pos} claims "
                              f"{length:,} bytes; the file has {len(data) - pos - 12:,} left)")
        if kind == b"IEND":
            return
        pos += 12 + length


IMAGE_FORMATS = {b"\xff\xd8": "jpeg", b"\x89PNG\r\n\x1a\n": "png", b"BM": "bmp",
                 b"GIF87a": "gif", b"GIF89a": "gif", b"II*\x00": "tiff", b"MM\x00*": "tiff"}


def image_format(data: bytes) -> str | None:
    """The format an image file's first bytes name (jpeg, png, bmp, gif, webp, tiff); None when
    they name none of these (text, a video, an empty body)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return next((kind for magic, kind in IMAGE_FORMATS.items() if data.startswith(magic)), None)


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """An RGB uint8 image -> JPEG bytes (libjpeg-turbo)."""
    return simplejpeg.encode_jpeg(np.ascontiguousarray(image), quality, "RGB")


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as the header of a JPEG, PNG, BMP, GIF, WebP or TIFF file states it;
    None for other formats or a header too broken to say."""
    try:
        if data[:2] == b"\xff\xd8":
            height, width, _, _ = simplejpeg.decode_jpeg_header(data)
            return width, height
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"BM":
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8X":
                return (int.from_bytes(data[24:27], "little") + 1,
                        int.from_bytes(data[27:30], "little") + 1)
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 ":
                width, height = struct.unpack("<HH", data[26:30])
                return width & 0x3FFF, height & 0x3FFF
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
    except (ValueError, struct.error):
        return None
    return None


def upright_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file as it is shown, upright (a JPEG's EXIF orientation
    applied), from its header alone."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        raise HrposeError(f"{path}: image not found or unreadable") from None
    size = image_size(data)
    if size is None:
        raise HrposeError(f"{path}: not an image hrpose can read (JPEG, PNG, BMP, GIF, WebP, "
                          "TIFF)")
    turned = data[:2] == b"\xff\xd8" and jpeg_orientation(data) in (5, 6, 7, 8)
    return (size[1], size[0]) if turned else size


def jpeg_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of a JPEG file's bytes; 1 (upright) when it has none."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in (0xD9, 0xDA):    # end of image, start of scan: no more metadata
            break
        if marker == 0xE1 and data[i + 4 : i + 10] == b"Exif\0\0":
            return _tiff_orientation(data[i + 10 : i + 2 + length])
        i += 2 + length
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    """Tag 0x0112 of the first IFD of an EXIF TIFF block."""
    order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1
    ifd = int.from_bytes(tiff[4:8], order)
    count = int.from_bytes(tiff[ifd : ifd + 2], order) if ifd + 2 <= len(tiff) else 0
    for entry in range(ifd + 2, min(ifd + 2 + 12 * count, len(tiff) - 11), 12):
        if int.from_bytes(tiff[entry : entry + 2], order) == 0x0112:
            value = int.from_bytes(tiff[entry + 8 : entry + 10], order)
            return value if 1 <= value <= 8 else 1
    return 1


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of a TIFF's first directory (the page decoders
    read), wherever among its entries they are."""
    order = "<" if data[:2] == b"II" else ">"
    ifd = struct.unpack(order + "I", data[4:8])[0]
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    # Up to 65,535 entries: read as one array, not entry by entry.
    entries = np.frombuffer(data, np.dtype([("tag", order + "u2"), ("kind", order + "u2"),
                                            ("count", order + "u4"), ("value", "V4")]),
                            count, ifd + 2)
    found = {}
    for tag in (256, 257):
        where = np.flatnonzero(entries["tag"] == tag)
        if len(where):
            kind, value = int(entries["kind"][where[0]]), entries["value"][where[0]].tobytes()
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"),
                                       value[:2] if kind == 3 else value)[0]
    return (found[256], found[257]) if len(found) == 2 else None


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Writes an RGB image (format by extension), atomically."""
    with atomic_path(path) as tmp:
        ok, data = cv2.imencode(str(path)[str(path).rfind("."):],
                                cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError(f"{path}: cannot encode the image")
        tmp.write_bytes(data.tobytes())


