"""What a file really is, and the image work done before anything is stored.

Pure functions over bytes (no database, no files): the accepted formats, the check that the
declared type, the file name and the sniffed bytes agree, and the re-encoding of images.

Why re-encode every image: a phone photo carries EXIF, and EXIF carries the GPS position of
the clinic or the patient's home. Decoding the pixels and encoding them again is the only way
to be sure that no metadata block (EXIF, XMP, maker notes, comments) survives; the EXIF
orientation is applied to the pixels first, so the photo still stands the right way up.
"""

from __future__ import annotations

import io
import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

import filetype  # type: ignore[import-untyped]
import pillow_heif
from filetype.types import audio as filetype_audio  # type: ignore[import-untyped]
from filetype.types import video as filetype_video
from PIL import Image, ImageOps, UnidentifiedImageError

from telemed.attachments.models import AttachmentKind
from telemed.errors import ValidationFailed, Words
from telemed.i18n import N_

pillow_heif.register_heif_opener()

# How many leading bytes the sniffers look at (filetype reads the same amount).
SNIFF_BYTES = 8192
# Refuse images whose pixels would not fit in memory comfortably before decoding them
# (a "decompression bomb": a small file declaring an enormous canvas). 40 MP holds every
# phone and clinical camera photo (a 48 MP phone sensor saves 12 MP by default); the memory
# one such image costs is measured in tests/test_image_memory.py (docs/RELIABILITY.md).
MAX_PIXELS = 40_000_000
# The preview is what a page shows (the original is a tap away): 720 px fills a 360 px phone
# screen at twice its density, and 30 KB is two seconds of a 128 kbit/s link, so a consult
# page with its photos still loads over 2G (docs/PERFORMANCE.md, "Thin link").
PREVIEW_MAX_BYTES = 30_000
PREVIEW_FIRST_SIDE = 720
ORIGINAL_JPEG_QUALITY = 90
# Above this many pixels the original JPEG is written baseline and unoptimised: libjpeg
# streams it then, where progressive or optimised coding first buffers every coefficient of
# the image (about 120 MB more at 40 MP). Below it the few percent saved are worth it.
STREAMED_JPEG_PIXELS = 12_000_000
GENERIC_MEDIA_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
# Brands of ISO-BMFF files that hold HEVC-coded HEIF images (what iPhones call .heic). The
# generic "mif1" alone is not enough: AVIF files carry it too, and we cannot decode those.
HEIF_BRANDS = frozenset({"heic", "heix", "heim", "heis", "hevc", "hevx"})


def _is_heif(head: bytes) -> bool:
    if len(head) < 16 or head[4:8] != b"ftyp":
        return False
    box_end = min(int.from_bytes(head[0:4], "big"), len(head))
    brands = {head[8:12]} | {head[i : i + 4] for i in range(16, box_end - 3, 4)}
    return any(b.decode("latin-1") in HEIF_BRANDS for b in brands)


_M4A = filetype_audio.M4a()
_WEBM = filetype_video.Webm()


def _is_m4a(head: bytes) -> bool:
    # filetype's own guess() calls most .m4a files "video/mp4"; ask the audio matcher directly.
    return bool(_M4A.match(head))


def _is_webm(head: bytes) -> bool:
    return bool(_WEBM.match(head))


@dataclass(frozen=True)
class Format:
    """One accepted kind of file: what it is called, how it is recognised, how it is kept."""

    media_type: str  # canonical, as served on download
    kind: AttachmentKind
    label: str
    extensions: tuple[str, ...]  # the first is the canonical one
    aliases: frozenset[str]  # other media types browsers and phones declare for it
    matches: Callable[[bytes], bool]
    pillow_format: str | None = None  # images only

    def accepts_media_type(self, media_type: str) -> bool:
        return media_type == self.media_type or media_type in self.aliases


def _matcher(mime: str) -> Callable[[bytes], bool]:
    matcher = filetype.get_type(mime=mime)
    assert matcher is not None, mime

    def match(head: bytes) -> bool:
        return bool(matcher.match(head))

    return match


FORMATS: tuple[Format, ...] = (
    Format(
        "image/jpeg",
        AttachmentKind.image,
        "JPEG",
        (".jpg", ".jpeg", ".jpe"),
        frozenset({"image/jpg", "image/pjpeg"}),
        _matcher("image/jpeg"),
        "JPEG",
    ),
    Format(
        "image/png",
        AttachmentKind.image,
        "PNG",
        (".png",),
        frozenset({"image/x-png"}),
        _matcher("image/png"),
        "PNG",
    ),
    Format(
        "image/heic",
        AttachmentKind.image,
        "HEIC",
        (".heic", ".heif"),
        frozenset({"image/heif", "image/heic-sequence", "image/heif-sequence"}),
        _is_heif,
        "HEIF",
    ),
    Format(
        "application/pdf",
        AttachmentKind.pdf,
        "PDF",
        (".pdf",),
        frozenset({"application/x-pdf"}),
        _matcher("application/pdf"),
    ),
    Format(
        "audio/ogg",
        AttachmentKind.audio,
        "Ogg/Opus audio",
        (".ogg", ".opus", ".oga"),
        frozenset({"audio/opus", "application/ogg", "audio/x-ogg"}),
        _matcher("audio/ogg"),
    ),
    Format(
        "audio/mp4",
        AttachmentKind.audio,
        "M4A audio",
        (".m4a",),
        frozenset({"audio/x-m4a", "audio/m4a", "audio/aac"}),
        _is_m4a,
    ),
    Format(
        "audio/webm",
        AttachmentKind.audio,
        "WebM audio",
        (".webm", ".weba"),
        frozenset({"video/webm"}),  # MediaRecorder's audio-only recordings often say video/
        _is_webm,
    ),
)
ACCEPTED_EXTENSIONS = tuple(ext for f in FORMATS for ext in f.extensions)
ACCEPTED_SUMMARY = Words(N_("JPEG, PNG, HEIC, PDF or short audio (Ogg/Opus, M4A, WebM)"))
# For the file chooser: extensions and media types together, so phones offer the camera.
ACCEPT_ATTRIBUTE = ",".join(
    [*ACCEPTED_EXTENSIONS, *(f.media_type for f in FORMATS), "image/heif", "audio/*"]
)
JPEG = FORMATS[0]


def format_for_media_type(media_type: str) -> Format | None:
    wanted = media_type.split(";", 1)[0].strip().lower()
    return next((f for f in FORMATS if f.accepts_media_type(wanted)), None)


def extension_of(filename: str) -> str:
    return PurePosixPath(filename.replace("\\", "/")).suffix.lower()


def sniff(head: bytes) -> Format | None:
    """The accepted format these leading bytes really are, if any."""
    return next((f for f in FORMATS if f.matches(head)), None)


def describe_bytes(head: bytes) -> str:
    """A human name for what the bytes are, for error messages ("a Windows program")."""
    if head.startswith(b"MZ"):
        return "a Windows program (EXE)"
    if head.startswith(b"\x7fELF"):
        return "a Linux program (ELF)"
    if head.startswith(b"#!"):
        return "a script"
    kind = filetype.guess(head)
    if kind is not None:
        return f"a {kind.extension.upper()} file ({kind.mime})"
    return "of an unknown type"


def declared_format(filename: str, media_type: str) -> Format:
    """The format the client says it sends, from its media type and file name together.

    Both must name an accepted format, and the same one; a generic media type
    (``application/octet-stream``, often sent for .heic) defers to the extension.
    """
    declared = media_type.split(";", 1)[0].strip().lower()
    extension = extension_of(filename)
    by_extension = next((f for f in FORMATS if extension in f.extensions), None)
    if extension and by_extension is None:
        raise ValidationFailed(
            N_("files ending in %(extension)s are not accepted; send %(accepted_summary)s"),
            extension=extension,
            accepted_summary=ACCEPTED_SUMMARY,
            field="filename",
        )
    if declared in GENERIC_MEDIA_TYPES:
        if by_extension is None:
            raise ValidationFailed(
                N_("the file type is unknown: name the file with its extension (%(extensions)s)"),
                extensions=", ".join(ACCEPTED_EXTENSIONS),
                field="filename",
            )
        return by_extension
    by_type = format_for_media_type(declared)
    if by_type is None:
        raise ValidationFailed(
            N_("files of type %(declared)s are not accepted; send %(accepted_summary)s"),
            declared=declared,
            accepted_summary=ACCEPTED_SUMMARY,
            field="media_type",
        )
    if by_extension is not None and by_extension is not by_type:
        raise ValidationFailed(
            N_(
                "the file name says %(named_format)s (%(extension)s) but the type says "
                "%(declared_format)s (%(declared)s)"
            ),
            named_format=by_extension.label,
            extension=extension,
            declared_format=by_type.label,
            declared=declared,
            field="media_type",
        )
    return by_type


def check_bytes(declared: Format, head: bytes) -> None:
    """Refuse the file unless its leading bytes are really the declared format."""
    found = sniff(head)
    if found is declared:
        return
    what = f"a {found.label} file" if found is not None else describe_bytes(head)
    raise ValidationFailed(
        N_(
            "the file is declared as %(declared_format)s but its content is %(what)s; nothing was "
            "kept"
        ),
        declared_format=declared.label,
        what=what,
        field="file",
    )


def safe_filename(filename: str, fmt: Format) -> str:
    """The client's file name made harmless for a download header and a file chooser.

    Keeps letters (any script), digits and a few punctuation marks; drops directories and
    control characters; ends in the stored format's extension (.heic becomes .jpg).
    """
    base = unicodedata.normalize("NFC", filename.replace("\\", "/").rsplit("/", 1)[-1])
    stem = base[: -len(extension_of(base))] if extension_of(base) else base
    cleaned = "".join(c if c.isalnum() or c in " ._-()+" else "_" for c in stem)
    cleaned = " ".join(cleaned.split()).strip(" ._") or "attachment"
    extension = extension_of(base)
    if extension not in fmt.extensions:
        extension = fmt.extensions[0]
    return cleaned[:120] + extension


def format_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


@dataclass(frozen=True)
class ProcessedImage:
    original: bytes  # metadata-free, upright; JPEG for JPEG and HEIC, PNG for PNG
    original_format: Format
    preview: bytes  # JPEG of at most PREVIEW_MAX_BYTES
    width: int
    height: int


def _flatten(image: Image.Image) -> Image.Image:
    """An RGB or L image for JPEG: transparency over white, other modes converted."""
    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", image.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    return image.convert("RGB")


def _jpeg(image: Image.Image, quality: int, *, icc: bytes | None = None) -> bytes:
    out = io.BytesIO()
    buffered = image.width * image.height <= STREAMED_JPEG_PIXELS
    options: dict[str, object] = {"quality": quality, "optimize": buffered, "progressive": buffered}
    if icc:
        options["icc_profile"] = icc
    image.save(out, "JPEG", **options)
    return out.getvalue()


def make_preview(image: Image.Image, limit: int = PREVIEW_MAX_BYTES) -> bytes:
    """A progressive JPEG of at most ``limit`` bytes: lower the quality, then the size.
    ``image`` should already be small (``_preview_source``): each try copies it."""
    rgb = _flatten(image)
    side = PREVIEW_FIRST_SIDE
    while True:
        work = rgb.copy()
        work.thumbnail((side, side))
        for quality in (75, 62, 50, 40):
            data = _jpeg(work, quality)
            if len(data) <= limit:
                return data
        if side <= 64:  # a 64-pixel JPEG is a few KB; only a tiny limit gets here
            raise ValidationFailed(N_("could not make a preview small enough"), field="file")
        side = int(side * 0.7)


def _reduced(image: Image.Image) -> Image.Image:
    """``image`` shrunk by a whole factor to no less than the preview's first side, a strip
    of rows at a time: a few MB whatever the photo. (``reduce`` on the whole image would
    first copy all of it, premultiplied, when it has an alpha channel.)"""
    factor = max(1, max(image.size) // PREVIEW_FIRST_SIDE)
    if factor == 1:
        return _flatten(image).copy()
    width, height = image.size
    small = Image.new("RGB", (-(-width // factor), -(-height // factor)), "white")
    rows = factor * 32
    for top in range(0, height, rows):
        strip = _flatten(image.crop((0, top, width, min(height, top + rows))))
        small.paste(strip.reduce(factor), (0, top // factor))
    return small


def decode_for_preview(data: bytes) -> Image.Image:
    """A JPEG decoded at 1/2, 1/4 or 1/8 scale by the decoder itself (``draft``), upright:
    a 40-megapixel photo's preview costs a few MB, and its full pixels are never decoded
    for it."""
    with Image.open(io.BytesIO(data), formats=["JPEG"]) as small:
        # The preview's first size (longest side PREVIEW_FIRST_SIDE): the decoder picks the
        # smallest of its scales that still covers it, both ways.
        fit = min(1.0, PREVIEW_FIRST_SIDE / max(small.size))
        small.draft("RGB", (math.ceil(small.width * fit), math.ceil(small.height * fit)))
        small.load()
        ImageOps.exif_transpose(small, in_place=True)
        return small


def _unreadable(fmt: Format, exc: Exception) -> ValidationFailed:
    if isinstance(exc, ValueError):
        return ValidationFailed(
            N_("the %(format)s image could not be read: %(error)s"),
            format=fmt.label,
            error=exc,
            field="file",
        )
    return ValidationFailed(
        N_("the %(format)s image could not be read (%(kind)s): it may be damaged or cut short"),
        format=fmt.label,
        kind=exc.__class__.__name__,
        field="file",
    )


_READ_ERRORS = (
    UnidentifiedImageError,
    Image.DecompressionBombError,
    OSError,
    SyntaxError,
    ValueError,
)


def _decoded(data: bytes, fmt: Format) -> tuple[Image.Image, bytes | None]:
    """The image's pixels, upright and carrying no metadata, and its ICC profile.

    The size is checked from the header, before a pixel is decoded. Then one full-size
    copy only: the orientation is applied in place, and the info dict (EXIF, XMP,
    comments, text chunks: all the encoders read besides their arguments) is emptied but
    for the transparency, which is pixel semantics, not metadata.
    """
    assert fmt.pillow_format is not None
    with Image.open(io.BytesIO(data), formats=[fmt.pillow_format]) as opened:
        if opened.width * opened.height > MAX_PIXELS:
            raise ValidationFailed(
                N_(
                    "the image is %(width)sx%(height)s pixels; at most "
                    "%(megapixels)s megapixels are accepted"
                ),
                width=opened.width,
                height=opened.height,
                megapixels=MAX_PIXELS // 1_000_000,
                field="file",
            )
        opened.load()
        icc = opened.info.get("icc_profile")
        ImageOps.exif_transpose(opened, in_place=True)
        transparency = opened.info.get("transparency")
        opened.info.clear()
        if transparency is not None:
            opened.info["transparency"] = transparency
        opened.getexif().clear()  # the parsed copy too, should an encoder ever ask it
        return opened, icc if isinstance(icc, bytes) else None


def process_image(data: bytes, fmt: Format) -> ProcessedImage:
    """Decode, turn upright, drop all metadata, re-encode; HEIC becomes JPEG. The preview
    comes from a reduced image (JPEG: decoded at reduced scale, ``draft``), never from a
    second full-size copy; see docs/RELIABILITY.md for the memory this costs."""
    try:
        clean, icc_profile = _decoded(data, fmt)
    except ValidationFailed:
        raise
    except _READ_ERRORS as exc:
        raise _unreadable(fmt, exc) from exc
    width, height = clean.size
    if fmt.media_type == "image/png":
        out = io.BytesIO()
        options: dict[str, object] = {"icc_profile": icc_profile} if icc_profile else {}
        clean.save(out, "PNG", **options)
        original, original_format = out.getvalue(), fmt
    else:
        original = _jpeg(_flatten(clean), ORIGINAL_JPEG_QUALITY, icc=icc_profile)
        original_format = JPEG
    if fmt.media_type == "image/jpeg":
        del clean  # the full pixels go before the preview is decoded on its own
        try:
            small = decode_for_preview(data)
        except _READ_ERRORS as exc:
            raise _unreadable(fmt, exc) from exc
    else:
        small = _reduced(clean)
        del clean
    return ProcessedImage(
        original=original,
        original_format=original_format,
        preview=make_preview(small),
        width=width,
        height=height,
    )
