"""Trial record values from their text form (MLflow parameters, ``per_image.csv`` cells), typed
as reports compute with them."""

from inr_models import get_codec_class

# Parameters every trial may have, with their types; the rate setting is typed by its codec's axis.
_TYPED_PARAMS = {"alpha": float, "seed": int}


def param_value(key: str, text: str):
    """A trial parameter's value from its text: a number where the parameter is one."""
    return _TYPED_PARAMS.get(key, str)(text)


def rate_value(codec: str | None, name: str, text: str):
    try:
        return get_codec_class(codec).rate_axis.parse(text)
    except (KeyError, ValueError):
        # A codec this process does not know (a plugin not imported): a number if it reads as one.
        try:
            return float(text)
        except ValueError:
            return text
