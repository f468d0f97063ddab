import pytest

from losses import COOLCHIC, LossSpecError, LossTerm, build_loss, get_convention


def test_paper_losses_expand_to_their_terms():
    assert build_loss("lc_ssim").terms == (LossTerm("logcosh", 1.0), LossTerm("ssim", 0.01))
    assert build_loss("l1_ssim").terms == (LossTerm("l1", 0.8), LossTerm("ssim", 0.2))
    assert build_loss("l1_ssim(alpha=0.5)").terms == (LossTerm("l1", 0.5), LossTerm("ssim", 0.5))
    loss = build_loss(" LC_SSIM( 0.05 ) ", COOLCHIC)
    assert (loss.family, loss.alpha, loss.name) == ("lc_ssim", 0.05, "lc_ssim(0.05)")
    assert loss.convention is COOLCHIC


def test_a_loss_names_the_pretrained_networks_it_trains_with():
    from losses import available_components, component_info
    from losses.weights.sources import NETWORK_PARTS

    assert build_loss("lc_ssim").networks == set()
    assert build_loss("mse:1+lpips:0.1+wd:0.5").networks == {"lpips-alex", "vgg16-relu5_3"}
    assert build_loss("l1+lpips_vgg+wasserstein").networks == {"lpips-vgg", "vgg16-relu4_3"}
    # Each one a network `inr-study fetch weights --networks` can fetch; nothing else registers.
    from losses import register_component
    from losses.networks import KNOWN_NETWORKS

    declared = {n for c in available_components() for n in component_info(c).networks}
    assert declared <= set(KNOWN_NETWORKS) == set(NETWORK_PARTS)
    for wrong in ("lpips-alex", ("vgg19",)):  # a lone string would read as its letters
        with pytest.raises(ValueError, match="networks must be a tuple of names among"):
            register_component("never_registered", networks=wrong)


def test_composite_spec_and_config_list_agree():
    from_text = build_loss("l1:0.8+ssim:0.2")
    from_list = build_loss(
        [{"component": "l1", "weight": 0.8}, {"component": "ssim", "weight": 0.2}]
    )
    assert from_text.terms == from_list.terms
    assert from_text.spec == "l1:0.8+ssim:0.2"
    assert build_loss({"name": "lc_ssim", "alpha": 0.02}).alpha == 0.02


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "l2",
            r"unknown component 'l2'.*components: l1, logcosh, lpips, lpips_vgg, ms_ssim, mse",
        ),
        ("l1+lc_ssim", r"loss families stand alone"),
        ("l1:abc", r"weight 'abc' is not a number"),
        ("l1:-1", r"must be finite and >= 0"),
        ("l1_ssim(1.5)", r"α must lie in \[0, 1\]"),
        ("mse(0.1)", r"takes no α"),
        ("l1+l1", r"appears twice"),
        ("l1:0+ssim:0", r"at least one weight must be > 0"),
        ("", r"empty loss spec; valid components"),
    ],
)
def test_bad_specs_say_what_is_valid(spec, message):
    with pytest.raises(LossSpecError, match=message):
        build_loss(spec)


def test_bad_config_entries_are_named():
    with pytest.raises(LossSpecError, match=r"unknown component 'foo'.*loss families"):
        build_loss([{"component": "foo", "weight": 1}])
    with pytest.raises(LossSpecError, match=r"expected \{'component'"):
        build_loss([{"type": "l1"}])


def test_unknown_convention_lists_valid_ones():
    with pytest.raises(KeyError, match=r"valid conventions: coolchic, nif, plain"):
        get_convention("tf")
