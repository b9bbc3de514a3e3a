"""Message content: the per-channel shape stored on a message (`channels`), locale
fallback (`locales`) and sandboxed template rendering (`render`). No database here."""
