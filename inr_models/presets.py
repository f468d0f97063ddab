"""What every codec's presets share: lookup by name, with an error that lists the valid names."""


def named_preset(presets: dict, name: str, codec_label: str):
    try:
        return presets[name]
    except KeyError:
        valid = ", ".join(sorted(presets))
        raise KeyError(f"unknown {codec_label} preset {name!r}; valid presets: {valid}") from None
