"""When a fit's file is on its target bitrate, and which of several fits is nearest it: the rule
the rate matcher searches by and the α tables judge by. IEEE division only, no logarithm: the α
reports rank fits by it, and a report gives the same bits on every machine (DEVELOPERS.md)."""


def on_target(bpp: float, target: float, tolerance: float) -> bool:
    return abs(bpp / target - 1) <= tolerance


def off_by(bpp: float, target: float) -> float:
    """The factor between the file's rate and the target, >= 1 (1.25: a quarter too many bits or
    a fifth too few); it orders fits as |log(bpp / target)| does."""
    return max(bpp / target, target / bpp)


def match_rank(bpp: float, target: float, tolerance: float) -> tuple[bool, float]:
    """Sorts the fits of a match best first: any on target before any off it (1.051× the target
    is nearer than 0.951× by ``off_by``, yet off), then by ``off_by``."""
    return not on_target(bpp, target, tolerance), off_by(bpp, target)
