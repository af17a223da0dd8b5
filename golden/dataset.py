"""The training data: a seeded avatar maker, an own-image importer and the loader used by training.

The seed paper trained on 275 avatars of 32×32 pixels made with CharaMEL 0.9.0, which cannot be
redistributed. :func:`make_avatars` replaces them with avatars drawn by py-avataaars: for each
avatar a seeded random choice of hair style (top type), hair colour, hat colour, skin, eyes,
eyebrows, mouth, facial hair and its colour, accessories, clothes, clothes colour and clothes
graphic. Each avatar is rendered from SVG with cairosvg at its native 280×280 pixels,
alpha-composited on white, cut to a fixed 224-pixel square around the head and shoulders
(:data:`CROP`) and reduced to 32×32 RGB with Pillow's LANCZOS filter. The same seed gives the
same files, byte for byte, on the same library versions.

:func:`import_dataset` turns a folder of the user's own images (PNG, JPEG, GIF, BMP, WebP; RGBA,
palette, greyscale, 16-bit; any size) into a dataset of the same form: alpha composited on white,
centre-cropped to a square, LANCZOS to 32×32.

Both write a dataset folder::

    <out>/png/0000.png ...    the avatars, 32×32 RGB PNG
    <out>/attributes.csv      one row per avatar (labels, for coverage metrics; or source file)
    <out>/avatars.npz         key ``images``: uint8 (N, 32, 32, 3) — what training reads
    <out>/dataset.json        how the dataset was made (source, seed, count, filter, versions)

The folder is built beside ``<out>`` and swapped in only when complete, so a failed run leaves
the previous dataset as it was. :func:`load_images` reads the ``.npz`` (or a dataset folder) and
refuses anything else with a :class:`~base.errors.UserError`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import sys
import warnings
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image, ImageOps

from base.errors import UserError
from base.fileio import atomic_path, atomic_write, check_output_folder, staged_folder
from golden.npzfile import read_npz

#: Side of a dataset image in pixels.
SIZE = 32
#: The resampling filter of every reduction to 32×32 (generated avatars and own images).
RESAMPLE = Image.Resampling.LANCZOS
#: Name of :data:`RESAMPLE`, as written to ``dataset.json`` and the docs.
RESAMPLE_NAME = "LANCZOS"
#: Window ``(left, top, right, bottom)`` cut from the avatar rendered at its native 280×280 pixels:
#: the body spans x 41..240 there, the head without hair starts at y 36 and tall hats at y 0. The
#: 224-pixel square keeps the whole head (tall hats lose at most their top 10 pixels) and the
#: shoulders, so the face fills the frame like the seed's 32×32 CharaMEL busts.
CROP = (29, 10, 253, 234)
#: Pixels per side of the native rendering. (cairosvg 2.9 draws py-avataaars' masks wrongly at any
#: other scale or viewBox: half the hair and clothes go missing, so we render at 280 and crop.)
RENDER_PX = 280
#: Default number of generated avatars (the size of the seed's dataset) and default seed.
DEFAULT_COUNT = 275
DEFAULT_SEED = 0
#: Largest ``--count`` accepted (keeps file names at four digits and runs bounded).
MAX_COUNT = 9999
#: File name suffixes :func:`import_images` tries to read (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")

NPZ_NAME = "avatars.npz"
CSV_NAME = "attributes.csv"
JSON_NAME = "dataset.json"
PNG_DIR = "png"

#: Attribute columns of ``attributes.csv`` for generated avatars, in drawing order. An attribute
#: that does not show on the avatar (hair colour under a hat, graphic on a plain shirt, ...) is
#: still drawn, so the random stream does not depend on it, but written as an empty field.
ATTRIBUTES = ("top_type", "hair_color", "hat_color", "skin_color", "eye_type", "eyebrow_type",
              "mouth_type", "facial_hair_type", "facial_hair_color", "accessories_type",
              "clothe_type", "clothe_color", "clothe_graphic_type")

#: Probability of no facial hair and of no accessory; the other choices share the rest evenly.
#: (Uniform choices would put a beard on 5 of 6 avatars and glasses on 6 of 7.)
P_NO_FACIAL_HAIR = 0.6
P_NO_ACCESSORY = 0.5

_HAT_TOPS = {"HAT", "HIJAB", "TURBAN", "WINTER_HAT1", "WINTER_HAT2", "WINTER_HAT3", "WINTER_HAT4"}
_PLAIN_CLOTHES = {"BLAZER_SHIRT", "BLAZER_SWEATER"}  # clothe_color does not apply to blazers


# ---------------------------------------------------------------------------------------------
# Generated avatars
# ---------------------------------------------------------------------------------------------

def _enums():
    import py_avataaars as pa

    return {
        "top_type": pa.TopType, "hair_color": pa.HairColor, "hat_color": pa.Color,
        "skin_color": pa.SkinColor, "eye_type": pa.EyesType, "eyebrow_type": pa.EyebrowType,
        "mouth_type": pa.MouthType, "facial_hair_type": pa.FacialHairType,
        "facial_hair_color": pa.HairColor, "accessories_type": pa.AccessoriesType,
        "clothe_type": pa.ClotheType, "clothe_color": pa.Color,
        "clothe_graphic_type": pa.ClotheGraphicType,
    }


def _weights(members: Sequence, none_name: str, p_none: float) -> np.ndarray:
    """Probabilities over ``members``: ``p_none`` for the one named ``none_name``, the rest even."""
    p = np.full(len(members), (1.0 - p_none) / (len(members) - 1))
    p[[m.name for m in members].index(none_name)] = p_none
    return p


def draw_attributes(count: int, seed: int) -> list[dict]:
    """Draw the attributes of ``count`` avatars from ``seed``.

    Parameters
    ----------
    count : int
        Number of avatars.
    seed : int
        Seed of ``numpy.random.default_rng``; the attributes are drawn avatar by avatar in the
        order of :data:`ATTRIBUTES`, so avatar ``i`` is the same whatever ``count`` is.

    Returns
    -------
    list of dict
        One dict per avatar mapping each name of :data:`ATTRIBUTES` to a py-avataaars enum member.
    """
    enums = _enums()
    members = {k: list(e) for k, e in enums.items()}
    probs = {
        "facial_hair_type": _weights(members["facial_hair_type"], "DEFAULT", P_NO_FACIAL_HAIR),
        "accessories_type": _weights(members["accessories_type"], "DEFAULT", P_NO_ACCESSORY),
    }
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        one = {}
        for name in ATTRIBUTES:
            choices = members[name]
            one[name] = choices[int(rng.choice(len(choices), p=probs.get(name)))]
        out.append(one)
    return out


def visible_attributes(attrs: dict) -> dict:
    """The attribute names as written to ``attributes.csv``: ``""`` where it does not show."""
    top = attrs["top_type"].name
    shown = {name: member.name for name, member in attrs.items()}
    if not top.startswith(("LONG_HAIR", "SHORT_HAIR")):
        shown["hair_color"] = ""
    if top not in _HAT_TOPS:
        shown["hat_color"] = ""
    if attrs["facial_hair_type"].name == "DEFAULT":
        shown["facial_hair_type"] = "NONE"
        shown["facial_hair_color"] = ""
    if attrs["accessories_type"].name == "DEFAULT":
        shown["accessories_type"] = "NONE"
    if attrs["clothe_type"].name in _PLAIN_CLOTHES:
        shown["clothe_color"] = ""
    if attrs["clothe_type"].name != "GRAPHIC_SHIRT":
        shown["clothe_graphic_type"] = ""
    return shown


def render_avatar(attrs: dict) -> Image.Image:
    """Render one avatar at its native size, on white, as RGB ``RENDER_PX``×``RENDER_PX``.

    The library's stray prints (it reports duplicate SVG ids on stdout) are swallowed.
    """
    import cairosvg
    import py_avataaars as pa

    avatar = pa.PyAvataaar(style=pa.AvatarStyle.TRANSPARENT, **attrs)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        png = cairosvg.svg2png(bytestring=avatar.render_svg().encode("utf-8"))
    with Image.open(io.BytesIO(png)) as im:
        if im.size != (RENDER_PX, RENDER_PX):
            raise RuntimeError(f"py-avataaars rendered {im.size}, expected {RENDER_PX}x{RENDER_PX}")
        return _on_white(im.convert("RGBA"))


def avatar_to_rgb32(rendered: Image.Image) -> np.ndarray:
    """Cut :data:`CROP` from a native rendering and reduce it to uint8 ``(32, 32, 3)`` with LANCZOS."""
    return np.asarray(rendered.crop(CROP).resize((SIZE, SIZE), RESAMPLE), dtype=np.uint8)


def make_avatars(count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED,
                 progress: bool = True) -> tuple[np.ndarray, list[dict]]:
    """Draw and render ``count`` avatars.

    Returns
    -------
    images : numpy.ndarray
        uint8 ``(count, 32, 32, 3)``.
    rows : list of dict
        The visible attributes of each avatar (see :func:`visible_attributes`).
    """
    from tqdm import tqdm

    attrs = draw_attributes(count, seed)
    images = np.empty((count, SIZE, SIZE, 3), np.uint8)
    for i, a in enumerate(tqdm(attrs, desc="avatars", unit="img", disable=not progress,
                               file=sys.stderr)):
        images[i] = avatar_to_rgb32(render_avatar(a))
    return images, [visible_attributes(a) for a in attrs]


def _versions(*dists: str) -> dict:
    out = {}
    for d in dists:
        try:
            out[d] = metadata.version(d)
        except metadata.PackageNotFoundError:  # pragma: no cover - all are dependencies
            out[d] = None
    return out


def generate_dataset(out: str | os.PathLike, count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED,
                     progress: bool = True) -> Path:
    """``avatargan dataset``: make ``count`` avatars from ``seed`` and write the dataset folder ``out``."""
    if not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise UserError(f"--count must be between 1 and {MAX_COUNT}, got {count}")
    if not isinstance(seed, int) or seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {seed}")
    out = _check_out(out)
    images, rows = make_avatars(count, seed, progress)
    table = [{"index": i, "png": _png_name(i), **r} for i, r in enumerate(rows)]
    info = {
        "format": "avatargan-dataset", "format_version": 1, "source": "py-avataaars",
        "count": count, "seed": seed, "size": SIZE, "filter": RESAMPLE_NAME,
        "render_px": RENDER_PX, "crop_px": list(CROP),
        "p_no_facial_hair": P_NO_FACIAL_HAIR, "p_no_accessory": P_NO_ACCESSORY,
        "versions": _versions("py-avataaars", "cairosvg", "pillow", "numpy"),
    }
    return write_dataset(out, images, table, info)


# ---------------------------------------------------------------------------------------------
# Own images
# ---------------------------------------------------------------------------------------------

def _on_white(im: Image.Image) -> Image.Image:
    """Composite an RGBA image on white; return RGB."""
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, im).convert("RGB")


def _to_8bit(im: Image.Image) -> Image.Image:
    """Integer and float single-band images (16-bit PNG opens as ``I;16`` or ``I``) → ``L``.

    16-bit codes 0..65535 map to 0..255 by ``round(q / 257)``; a float image is taken as 0..1
    if its maximum is at most 1, else as 0..255; both are clipped.
    """
    a = np.asarray(im, dtype=np.float64)
    if im.mode == "F":
        scale = 255.0 if a.size and np.nanmax(a) <= 1.0 else 1.0
        a = np.nan_to_num(a) * scale
    else:
        a = a / 257.0
    return Image.fromarray(np.clip(np.floor(a + 0.5), 0, 255).astype(np.uint8), "L")


def to_rgb32(im: Image.Image) -> np.ndarray:
    """Any Pillow image → uint8 ``(32, 32, 3)``: on white, centre square, LANCZOS to 32×32.

    Animated images contribute their first frame; JPEG/WebP EXIF orientation is applied.
    """
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I", "F") or im.mode.startswith("I;"):
        key = im.info.get("transparency")  # 16-bit grey PNG with tRNS: one transparent grey code
        alpha = None
        if isinstance(key, int) and im.mode != "F":
            alpha = Image.fromarray(np.where(np.asarray(im) == key, 0, 255).astype(np.uint8), "L")
        im = _to_8bit(im)
        if alpha is not None:
            im = im.copy()
            im.putalpha(alpha)  # L -> LA, composited on white below
    if im.mode == "RGB":
        rgb = im
    elif im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info:
        rgb = _on_white(im.convert("RGBA"))
    else:  # L, 1, P without transparency, CMYK, YCbCr, LAB, HSV
        rgb = im.convert("RGB")
    w, h = rgb.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    square = rgb.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((SIZE, SIZE), RESAMPLE), dtype=np.uint8)


def read_image(path: Path) -> tuple[np.ndarray, tuple[int, int], str]:
    """Open and convert one image file (first frame if animated).

    Returns
    -------
    image : numpy.ndarray
        uint8 ``(32, 32, 3)``, see :func:`to_rgb32`.
    size, mode
        The file's size and Pillow mode, for ``attributes.csv``.

    Raises
    ------
    ValueError
        If the file is not an image Pillow can decode completely (truncated, corrupt, other).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's palette/bomb warnings: we convert anyway
            with Image.open(path) as im:
                im.load()
                return to_rgb32(im), im.size, im.mode
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise ValueError(str(e) or type(e).__name__) from None


def shown(name) -> str:
    """``name`` as printable UTF-8 text: bytes that are not UTF-8 become ``\\xNN`` escapes.

    File names on Linux are bytes; Python keeps undecodable ones as surrogates, which cannot be
    written to a UTF-8 file or terminal.
    """
    return str(name).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def import_images(folder: str | os.PathLike, warn: Callable[[str], None] | None = None,
                  progress: bool = True) -> tuple[np.ndarray, list[dict]]:
    """Read every image file directly inside ``folder`` (sorted by name; subfolders are not searched).

    Files that cannot be read are skipped, each with a warning that names it.

    Returns
    -------
    images : numpy.ndarray
        uint8 ``(N, 32, 32, 3)``.
    rows : list of dict
        ``{"source": file name, "width": ..., "height": ..., "mode": ...}`` per image kept.

    Raises
    ------
    UserError
        If the folder is missing or not a folder, holds no image file, or none can be read.
    """
    from tqdm import tqdm

    warn = warn or (lambda msg: print(msg, file=sys.stderr))
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"image folder {folder} does not exist")
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder (--from takes a folder of images)")
    try:
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as e:
        raise UserError(f"cannot list image folder {shown(folder)}: {e.strerror or e}") from None
    files = []
    for p in entries:
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if p.is_file():  # follows symbolic links; a broken one, a FIFO or a folder is not a file
            files.append(p)
        else:
            warn(f"warning: skipping {shown(p)}: not a regular file")
    if not files:
        kinds = ", ".join(IMAGE_SUFFIXES)
        what = "is empty" if not entries else f"holds no image files ({kinds})"
        raise UserError(f"image folder {folder} {what}")
    images, rows = [], []
    for p in tqdm(files, desc="images", unit="img", disable=not progress, file=sys.stderr):
        try:
            img, size, mode = read_image(p)
        except ValueError as e:
            warn(f"warning: skipping {shown(p)}: not a readable image ({e})")
            continue
        images.append(img)
        rows.append({"source": shown(p.name), "width": size[0], "height": size[1], "mode": mode})
    if not images:
        raise UserError(f"none of the {len(files)} image files in {folder} could be read")
    return np.stack(images), rows


def import_dataset(folder: str | os.PathLike, out: str | os.PathLike, progress: bool = True,
                   warn: Callable[[str], None] | None = None) -> Path:
    """``avatargan dataset --from DIR``: turn a folder of own images into the dataset folder ``out``."""
    folder_r, out_r = Path(folder).resolve(), Path(out).resolve()
    if out_r == folder_r:
        raise UserError(f"--out {out} is the image folder itself; choose another output folder")
    out = _check_out(out, inputs=[folder])
    images, rows = import_images(folder, warn=warn, progress=progress)
    table = [{"index": i, "png": _png_name(i), **r} for i, r in enumerate(rows)]
    info = {
        "format": "avatargan-dataset", "format_version": 1, "source": "folder",
        "folder": shown(str(folder_r)), "count": len(images), "size": SIZE, "filter": RESAMPLE_NAME,
        "versions": _versions("pillow", "numpy"),
    }
    return write_dataset(out, images, table, info, inputs=[folder])


# ---------------------------------------------------------------------------------------------
# Writing and reading a dataset
# ---------------------------------------------------------------------------------------------

def _png_name(i: int) -> str:
    return f"{PNG_DIR}/{i:04d}.png"


_LEGACY = re.compile(r"^(png/\d{4,}\.png|attributes\.csv|avatars\.npz|dataset\.json)$")


def _legacy_dataset(files: list[str]) -> str | None:
    """A dataset folder written before manifests: the dataset's own files and nothing else."""
    if JSON_NAME in files and all(_LEGACY.match(f) for f in files):
        return "dataset"
    return None


def _check_out(out: str | os.PathLike, inputs=()) -> Path:
    """Check the output folder before any work is done (the policy of :mod:`base.fileio`).

    Refuses an output path that is a file, a folder holding an input, or a non-empty folder that
    is not wholly a dataset written by this tool.
    """
    return check_output_folder(out, "dataset", inputs=inputs, legacy=_legacy_dataset)


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Write an uncompressed ``.npz`` atomically, byte-for-byte reproducible.

    ``numpy.savez`` stamps each member with the current time; here every member carries the
    fixed ZIP date 1980-01-01, so equal arrays give equal files.
    """
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, arr in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with zf.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)
    return Path(path)


def _png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def _csv_text(rows: Iterable[dict]) -> str:
    rows = list(rows)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_dataset(out: str | os.PathLike, images: np.ndarray, rows: list[dict], info: dict,
                  inputs=()) -> Path:
    """Write a dataset folder; the previous content of ``out`` survives any failure.

    The new folder is built as a hidden sibling of ``out`` and swapped into place when complete
    (:func:`base.fileio.staged_folder`); only an empty folder or a dataset this tool wrote
    is replaced.
    """
    with staged_folder(out, "dataset", inputs=inputs, legacy=_legacy_dataset) as stage:
        for row, img in zip(rows, images):
            atomic_write(stage / row["png"], _png_bytes(img))
        atomic_write(stage / CSV_NAME, _csv_text(rows))
        save_npz(stage / NPZ_NAME, images=images)
        atomic_write(stage / JSON_NAME, json.dumps(info, indent=2, sort_keys=True) + "\n")
    return Path(out)


def load_images(path: str | os.PathLike) -> np.ndarray:
    """Load a dataset for training: uint8 ``(N, 32, 32, 3)``.

    Parameters
    ----------
    path : path-like
        An ``avatars.npz`` (key ``images``) or a dataset folder holding one.

    Raises
    ------
    UserError
        If the file is missing, not an ``.npz``, lacks ``images``, or ``images`` is not uint8
        ``(N, 32, 32, 3)`` with N ≥ 1.
    """
    p = Path(path)
    if p.is_dir():
        p = p / NPZ_NAME
        if not p.is_file():
            raise UserError(f"{path} is not a dataset folder (no {NPZ_NAME}); "
                            "make one with `avatargan dataset`")
    if not p.exists():
        raise UserError(f"dataset {p} does not exist")
    arrays = read_npz(p, "dataset")
    if "images" not in arrays:
        raise UserError(f"dataset {p} has no array 'images' (found: {', '.join(arrays) or 'nothing'})")
    images = arrays["images"]
    if images.dtype != np.uint8:
        raise UserError(f"dataset {p}: 'images' must be uint8, got {images.dtype}")
    if images.ndim != 4 or images.shape[1:] != (SIZE, SIZE, 3) or images.shape[0] < 1:
        raise UserError(f"dataset {p}: 'images' must have shape (N, {SIZE}, {SIZE}, 3) with N >= 1, "
                        f"got {images.shape}")
    return np.ascontiguousarray(images)
