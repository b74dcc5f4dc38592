"""The vectorised CRF against pytorch-crf (the reference): likelihoods, gradients, Viterbi paths, checkpoints."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xlingual.models.crf import REDUCTIONS, MaskedCrf, ReferenceCrf


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def pair(num_tags: int, seed: int) -> tuple[MaskedCrf, ReferenceCrf]:
    torch.manual_seed(seed)
    crf = MaskedCrf(num_tags)
    reference = ReferenceCrf(num_tags)
    # Spread the transitions beyond their initial +-0.1 so they matter as they do after training.
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.mul_(30)
    reference.load_state_dict(crf.state_dict())
    return crf, reference


@st.composite
def crf_inputs(draw):
    """Emissions, tags and prefix masks as both models build them (every sequence at least one step long)."""
    batch = draw(st.integers(1, 5))
    width = draw(st.integers(1, 40))
    num_tags = draw(st.integers(1, 13))
    scale = draw(st.sampled_from([0.01, 1.0, 10.0, 100.0]))
    lengths = draw(st.lists(st.integers(1, width), min_size=batch, max_size=batch))
    seed = draw(st.integers(0, 2**16))
    generator = torch.Generator().manual_seed(seed)
    emissions = torch.randn(batch, width, num_tags, generator=generator) * scale
    tags = torch.randint(0, num_tags, (batch, width), generator=generator)
    mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
    return emissions, tags, mask, seed


def reference_double(reference: ReferenceCrf) -> ReferenceCrf:
    copy = ReferenceCrf(reference.num_tags).double()
    copy.load_state_dict(reference.state_dict())
    return copy


@settings(max_examples=60, deadline=None)
@given(crf_inputs(), st.sampled_from(REDUCTIONS))
def test_negative_log_likelihood_equals_pytorch_crf(inputs, reduction):
    emissions, tags, mask, seed = inputs
    crf, reference = pair(emissions.shape[2], seed)
    ours = crf.nll(emissions, tags, mask, reduction)
    # Ground truth in float64: pytorch-crf's own float32 loop is no more exact than ours.
    exact = -reference_double(reference)(emissions.double(), tags, mask=mask, reduction=reduction)
    assert ours.dtype == torch.float32 and ours.shape == exact.shape
    assert torch.allclose(ours.double(), exact, rtol=1e-5, atol=1e-3), (ours, exact)
    assert torch.allclose(ours, reference.nll(emissions, tags, mask, reduction), rtol=1e-4, atol=1e-2)


@settings(max_examples=25, deadline=None)
@given(crf_inputs())
def test_gradients_equal_pytorch_crfs_and_stay_finite(inputs):
    emissions, tags, mask, seed = inputs
    crf, reference = pair(emissions.shape[2], seed)
    ours_in = emissions.double().requires_grad_()
    theirs_in = emissions.double().requires_grad_()
    crf.nll(ours_in, tags, mask, "sum").backward()
    exact = reference_double(reference)
    (-exact(theirs_in, tags, mask=mask, reduction="sum")).backward()
    assert torch.isfinite(ours_in.grad).all()
    assert torch.allclose(ours_in.grad, theirs_in.grad, atol=1e-4)
    assert not ours_in.grad[~mask].any(), "padding received a gradient"
    for name, parameter in crf.named_parameters():
        theirs = dict(exact.named_parameters())[name].grad
        theirs = torch.zeros_like(parameter, dtype=torch.float64) if theirs is None else theirs
        assert torch.allclose(parameter.grad.double(), theirs, atol=1e-3), name


def path_scores(crf: MaskedCrf, emissions: torch.Tensor, paths: list[list[int]], mask: torch.Tensor) -> torch.Tensor:
    tags = torch.zeros(mask.shape, dtype=torch.long)
    for row, path in enumerate(paths):
        tags[row, : len(path)] = torch.tensor(path)
    double = MaskedCrf(crf.num_tags).double()
    double.load_state_dict(crf.state_dict())
    return double.gold_score(emissions.double(), tags, mask)


@settings(max_examples=60, deadline=None)
@given(crf_inputs())
def test_viterbi_paths_equal_pytorch_crfs_up_to_ties(inputs):
    emissions, _, mask, seed = inputs
    crf, reference = pair(emissions.shape[2], seed)
    ours, theirs = crf.viterbi(emissions, mask), reference.viterbi(emissions, mask)
    assert [len(p) for p in ours] == mask.sum(1).tolist() == [len(p) for p in theirs]
    assert all(0 <= tag < crf.num_tags for path in ours for tag in path)
    if ours != theirs:  # only a tie may separate them: both paths must score the same
        assert torch.allclose(path_scores(crf, emissions, ours, mask), path_scores(crf, emissions, theirs, mask), rtol=1e-5, atol=1e-3)


def test_viterbi_ties_are_broken_like_pytorch_crf():
    """All-equal scores: every path ties, and both implementations pick the same one."""
    crf, reference = MaskedCrf(5), ReferenceCrf(5)
    for module in (crf, reference):
        for parameter in module.parameters():
            torch.nn.init.zeros_(parameter)
    emissions = torch.zeros(3, 7, 5)
    mask = torch.arange(7)[None, :] < torch.tensor([7, 3, 1])[:, None]
    assert crf.viterbi(emissions, mask) == reference.viterbi(emissions, mask)


def test_viterbi_path_is_the_best_by_brute_force():
    crf, _ = pair(3, 11)
    emissions = torch.randn(1, 5, 3, generator=torch.Generator().manual_seed(3)) * 5
    mask = torch.ones(1, 5, dtype=torch.bool)
    everything = torch.cartesian_prod(*[torch.arange(3)] * 5)
    scores = crf.gold_score(emissions.expand(len(everything), -1, -1), everything, mask.expand(len(everything), -1))
    assert crf.viterbi(emissions, mask)[0] == everything[scores.argmax()].tolist()


def test_padding_matches_a_shorter_batch_exactly_in_value():
    """A sequence's loss does not depend on how far the batch is padded (the identity step is exact)."""
    crf, _ = pair(9, 5)
    generator = torch.Generator().manual_seed(0)
    emissions = torch.randn(2, 250, 9, generator=generator) * 50
    tags = torch.randint(0, 9, (2, 250), generator=generator)
    mask = torch.arange(250)[None, :] < torch.tensor([13, 250])[:, None]
    padded = crf.nll(emissions, tags, mask, "none")[0]
    alone = crf.nll(emissions[:1, :13], tags[:1, :13], mask[:1, :13], "none")[0]
    assert torch.allclose(padded, alone, rtol=1e-6)


def test_same_parameters_initialisation_and_checkpoints_as_pytorch_crf():
    torch.manual_seed(3)
    ours = MaskedCrf(13)
    torch.manual_seed(3)
    theirs = ReferenceCrf(13)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    for name, tensor in ours.state_dict().items():
        assert torch.equal(tensor, theirs.state_dict()[name]), name
        assert tensor.abs().max() <= 0.1
    theirs.load_state_dict(pair(13, 0)[0].state_dict())  # strict: the names line up both ways
    ours.load_state_dict(theirs.state_dict())


def test_bad_reduction_and_tag_count_are_errors():
    with pytest.raises(ValueError, match="reduction"):
        MaskedCrf(3).nll(torch.zeros(1, 2, 3), torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.bool), "avg")
    with pytest.raises(ValueError, match="number of tags"):
        MaskedCrf(0)


@settings(max_examples=25, deadline=None)
@given(crf_inputs(), st.integers(1, 13), st.sampled_from(REDUCTIONS))
def test_crfs_sharing_one_tree_give_each_its_own_likelihood_and_gradient(inputs, other_tags, reduction):
    """UMT's typed and span CRFs (13 and 7 tags) are computed together; each result equals pytorch-crf's alone."""
    from xlingual.models.crf import joint_nll

    emissions, tags, mask, seed = inputs
    first, first_reference = pair(emissions.shape[2], seed)
    second, second_reference = pair(other_tags, seed + 1)
    generator = torch.Generator().manual_seed(seed)
    other_emissions = torch.randn(*mask.shape, other_tags, generator=generator).requires_grad_()
    other_labels = torch.randint(0, other_tags, mask.shape, generator=generator)
    emissions = emissions.clone().requires_grad_()
    joint = joint_nll([first, second], [emissions, other_emissions], [tags, other_labels], mask, reduction)
    sum(loss.sum() for loss in joint).backward()
    grads = emissions.grad.clone(), other_emissions.grad.clone()
    # The reference in float64: pytorch-crf's float32 gradients are coarser than ours at large scales.
    exact = [reference_double(first_reference), reference_double(second_reference)]
    inputs_exact = [emissions.detach().double().requires_grad_(), other_emissions.detach().double().requires_grad_()]
    alone = [-crf(e, t, mask=mask, reduction=reduction) for crf, e, t in zip(exact, inputs_exact, [tags, other_labels])]
    sum(loss.sum() for loss in alone).backward()
    for ours, theirs in zip(joint, alone):
        assert torch.allclose(ours.double(), theirs, rtol=1e-5, atol=1e-3)
    for ours, theirs in zip(grads, inputs_exact):
        assert torch.allclose(ours.double(), theirs.grad, atol=1e-4)
