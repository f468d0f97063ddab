"""One set of reports from several published studies of the same images.

Codecs studied apart on the same pixels (COOL-CHIC v1, v2 and NIF on the crops of `icip24-cpu`,
say) are compared as if one study had run them: each INR codec against those registered before it
with the same loss (`bd_rate_codecs`), every INR curve against each classical codec, per image.
The copies must prepare their images the same way (dataset, crop) and fit a codec and loss they
share at the same preset; only the images every copy has are kept, and a trial found in several
copies (the classical anchors they share) counts once.
"""

import argparse
from collections import defaultdict
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study combine", description=__doc__)
    parser.add_argument("published", type=Path, nargs="+", help="published studies (results/NAME)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for reports/")
    parser.add_argument("--name", help="the combined study's name (default: the folder's)")
    args = parser.parse_args(argv)

    from study.engine.archive import published_config
    from study.engine.plan import image_options
    from study.errors import InputError
    from study.layout import REPORTS_DIR, holds_study, is_published_copy
    from study.results.report import read_per_image_csv, write_reports

    if len({folder.resolve() for folder in args.published}) < len(args.published):
        raise InputError("a published study is given twice; give each once")
    if holds_study(args.output):
        raise InputError(
            f"-o {args.output}: holds a study; its reports are its own, not a combination's: "
            "give the combined reports a folder of their own"
        )
    prepared, by_key, images = {}, {}, None
    # Per codec and loss (one curve, whatever the preset): each preset and the studies fitting it.
    presets = defaultdict(lambda: defaultdict(set))
    for folder in args.published:
        if not is_published_copy(folder):
            raise InputError(f"{folder}: not a published study (no trials.jsonl)")
        config = published_config(folder, folder.resolve().parent)
        prepared[folder] = (config.images.dataset, image_options(config).label())
        records = read_per_image_csv(folder / REPORTS_DIR / "per_image.csv")
        names = {r["image"] for r in records}
        images = names if images is None else images & names
        for record in records:
            by_key.setdefault(record["trial_key"], record)
            if not record.get("search"):  # a search's fits draw no curve
                presets[record["codec"], record.get("loss")][record.get("preset")].add(str(folder))
    if len(set(prepared.values())) > 1:
        listing = "; ".join(f"{f}: {d}, {v or 'full size'}" for f, (d, v) in prepared.items())
        raise InputError(f"these studies prepare their images differently: {listing}")
    if not images:
        raise InputError("these studies share no image")
    records = [r for r in by_key.values() if r["image"] in images]
    mixed = [
        f"{codec}{f' with {loss}' if loss else ''} at "
        + ", ".join(f"{preset} ({', '.join(sorted(folders))})" for preset, folders in found.items())
        for (codec, loss), found in presets.items()
        if len(found) > 1
    ]
    if mixed:
        raise InputError(
            "one curve would average fits of two presets: "
            + "; ".join(mixed)
            + "; combine studies that fit each codec at one preset"
        )
    name = args.name or args.output.resolve().name
    written = write_reports(records, name, args.output / REPORTS_DIR)
    print(
        f"{name}: {len(records)} trials of {len(args.published)} studies on {len(images)} shared "
        f"images ({', '.join(sorted(images))}); wrote {len(written)} files to "
        f"{args.output / REPORTS_DIR}"
    )
    return 0
