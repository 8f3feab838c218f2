"""MediaProcessor: what a message's attachments become for the model.

:meth:`MediaProcessor.decode` turns a wire attachment (``{"name",
"mime_type", "data": base64}``) into an :class:`~aleph.engine.api.Attachment`
and :meth:`MediaProcessor.check` validates one; both raise
:class:`~aleph.protocol.errors.InvalidParams` (-32602) with the reason, so the
sessions can refuse a ``session.send`` before anything is stored.
:meth:`MediaProcessor.prepare` is what the engine calls: images go to the
model as image parts when the provider accepts them and are described in
text when it does not; text files are inlined, cut at
``media.max_inline_text_chars``; anything else is refused (EngineError
-32602, the same reason).

Accepted: PNG, JPEG, GIF and WebP images whose bytes match the declared
type; text (``text/*``, JSON, XML, YAML, TOML, CSV, JavaScript) that is valid
UTF-8 without NUL bytes. Limits: ``media.max_attachments``,
``media.max_attachment_bytes`` each, ``media.max_total_bytes`` together.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Sequence
from typing import Any

import attrs

from aleph.config import MediaConfig
from aleph.engine.api import Attachment, EngineError
from aleph.engine.conversation import ImagePart
from aleph.protocol.errors import InvalidParams

__all__ = ["MediaProcessor", "Prepared", "image_size", "image_type"]

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
TEXT_TYPES = (
    "application/json", "application/xml", "application/yaml", "application/x-yaml",
    "application/toml", "application/javascript", "application/x-sh", "application/csv",
)  # fmt: skip


def image_type(data: bytes) -> str | None:
    """The image type the bytes really are, from their magic number."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, GIF or JPEG header, if they can be read."""
    try:
        if data.startswith(b"\x89PNG") and len(data) >= 24:
            width, height = struct.unpack(">II", data[16:24])
            return int(width), int(height)
        if data[:3] == b"GIF" and len(data) >= 10:
            width, height = struct.unpack("<HH", data[6:10])
            return int(width), int(height)
        if data.startswith(b"\xff\xd8"):
            index = 2
            while index + 9 <= len(data):
                if data[index] != 0xFF:
                    return None
                marker = data[index + 1]
                length = struct.unpack(">H", data[index + 2 : index + 4])[0]
                if marker in (0xC0, 0xC1, 0xC2):
                    height, width = struct.unpack(">HH", data[index + 5 : index + 9])
                    return int(width), int(height)
                index += 2 + length
    except struct.error:
        return None
    return None


def _is_text_type(mime_type: str) -> bool:
    return mime_type.startswith("text/") or mime_type in TEXT_TYPES


@attrs.frozen
class Prepared:
    """The attachments as the model gets them: text to add, image parts to send."""

    text: str = ""
    images: tuple[ImagePart, ...] = ()


@attrs.frozen
class MediaProcessor:
    config: MediaConfig

    def decode(self, raw: dict[str, Any]) -> Attachment:
        """A wire attachment, its base64 checked; InvalidParams otherwise."""
        name, mime_type, data = raw.get("name"), raw.get("mime_type"), raw.get("data")
        if not isinstance(name, str) or not isinstance(mime_type, str) or not isinstance(data, str):
            raise InvalidParams('an attachment needs "name", "mime_type" and "data" (base64)')
        if len(data) > (self.config.max_attachment_bytes + 2) // 3 * 4 + 4:
            raise InvalidParams(
                f"attachment {name[:100]}: larger than {self.config.max_attachment_bytes} bytes"
            )
        try:
            decoded = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidParams(f"attachment {name[:100]}: data is not valid base64") from None
        attachment = Attachment(name, mime_type.lower().split(";")[0].strip(), decoded)
        self.check(attachment)
        return attachment

    def check(self, attachment: Attachment) -> None:
        """Refuse (InvalidParams) an attachment that is too big or not what it says."""
        name, declared, data = attachment.name[:100], attachment.mime_type, attachment.data
        if len(data) > self.config.max_attachment_bytes:
            raise InvalidParams(
                f"attachment {name}: {len(data)} bytes, more than "
                f"media.max_attachment_bytes ({self.config.max_attachment_bytes})"
            )
        actual = image_type(data)
        if declared.startswith("image/"):
            if declared not in IMAGE_TYPES:
                raise InvalidParams(
                    f"attachment {name}: {declared} images are not supported "
                    "(png, jpeg, gif, webp are)"
                )
            if actual != declared:
                what = f"a {actual.split('/')[1].upper()} image" if actual else "not an image"
                raise InvalidParams(
                    f"attachment {name}: declared {declared} but the data is {what}"
                )
            return
        if _is_text_type(declared):
            if actual is not None or b"\x00" in data:
                raise InvalidParams(
                    f"attachment {name}: declared {declared} but the data is binary"
                )
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidParams(
                    f"attachment {name}: declared {declared} but the data is not UTF-8 text"
                ) from None
            return
        raise InvalidParams(
            f"attachment {name}: type {declared} is not supported "
            "(images: png, jpeg, gif, webp; text files)"
        )

    def check_all(self, attachments: Sequence[Attachment]) -> None:
        if len(attachments) > self.config.max_attachments:
            raise InvalidParams(
                f"{len(attachments)} attachments, more than "
                f"media.max_attachments ({self.config.max_attachments})"
            )
        total = sum(len(attachment.data) for attachment in attachments)
        if total > self.config.max_total_bytes:
            raise InvalidParams(
                f"the attachments total {total} bytes, more than "
                f"media.max_total_bytes ({self.config.max_total_bytes})"
            )
        for attachment in attachments:
            self.check(attachment)

    def prepare(self, attachments: Sequence[Attachment], accepts_images: bool) -> Prepared:
        """Text to add to the message and images to send; EngineError -32602 if refused."""
        if not attachments:
            return Prepared()
        try:
            self.check_all(attachments)
        except InvalidParams as exc:
            raise EngineError(exc.message, code=-32602) from None
        texts: list[str] = []
        images: list[ImagePart] = []
        cap = self.config.max_inline_text_chars
        for attachment in attachments:
            if attachment.mime_type.startswith("image/"):
                if accepts_images:
                    images.append(ImagePart(attachment.mime_type, attachment.data))
                    texts.append(f"[image attached: {attachment.name}]")
                else:
                    texts.append(self.describe_image(attachment))
                continue
            text = attachment.data.decode("utf-8")
            note = ""
            if len(text) > cap:
                note = f"\n[truncated: {len(text) - cap} more characters not shown]"
                text = text[:cap]
            texts.append(
                f'<file name="{attachment.name}" type="{attachment.mime_type}">\n'
                f"{text}{note}\n</file>"
            )
        return Prepared("\n\n".join(texts), tuple(images))

    @staticmethod
    def describe_image(attachment: Attachment) -> str:
        size = image_size(attachment.data)
        dims = f", {size[0]}x{size[1]} pixels" if size else ""
        return (
            f"[image attached: {attachment.name} ({attachment.mime_type}{dims}, "
            f"{len(attachment.data)} bytes); this model cannot see images]"
        )
