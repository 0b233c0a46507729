"""Text from outside (file names, strings stored in a stranger's file) made safe to print on one line."""


def printable(text: str) -> str:
    """`text` as any terminal or log can print it on one line: bytes that are not UTF-8 (which Python
    keeps as lone surrogates) become \\xNN escapes, and so do control characters (a line break, a
    terminal escape sequence)."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
