"""An R-D curve's label: ``codec`` for a classical codec, ``codec__loss`` for an INR codec's fits
with one loss. Written and read here only, so reports, claims and dashboards agree on it."""

_SEPARATOR = "__"


def curve_label(codec: str, loss: str | None = None) -> str:
    return codec if not loss else f"{codec}{_SEPARATOR}{loss}"


def record_label(record: dict) -> str:
    """The curve a trial record belongs to."""
    return curve_label(record["codec"], record.get("loss"))


def label_parts(label: str) -> tuple[str, str]:
    """``(codec, loss)``; the loss is empty for a classical codec's curve."""
    codec, _, loss = label.partition(_SEPARATOR)
    return codec, loss
