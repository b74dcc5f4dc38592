"""2M-NER against its reference, re-derived here: outputs and gradients of the project's model equal an independent computation.

The functions prefixed ``ref_`` write out, in plain torch and without the
project's layers, what the public reference code computes (wangdsh/MMNERD:
``model/mmner.py`` for the blocks and the head, ``model/model_loss.py`` for
NT-Xent, ``dataset/data.py`` for the word gather and the CRF mask,
``main.py`` for the defaults: alpha 0.8, temperature 0.5). Facts read there:

* ``MultiHeadAttention``: queries, keys and values are linear maps, split into
  heads; scores ``q k^T / sqrt(head size)``, a softmax over the keys (the image
  tokens), the context merged back and passed through ``BertSelfOutput``
  (dense, dropout, ``LayerNorm(context + input)``). Its queries go through the
  *key* layer (``self.key(query_hs)``); the project fixes that unless
  ``faithful_query_bug``.
* The ViT block attends from the words over CLIP's 50 output tokens. Its mask
  (``get_extended_attention_mask_v2``) adds one constant to a whole row of
  scores, which a softmax over the row ignores: no mask over image tokens.
* The ResNet block projects the 2048-d vector (``dense_resnet``), repeats it
  once per word and attends over the copies, keys masked by ``bert_att_mask``
  (meant as the word padding; data.py builds it after padding the labels, so
  it is all ones there: over identical copies the two are the same function).
* The emission head: ``classifier(dropout(dense_cat([F_vit; F_res])))``.
* NT-Xent (SimCLR): the ``2B`` normalised views, cosine similarities, the
  positive at ``+-B`` off the diagonal, ``-log(exp(s+/t) / sum_{k != i} exp(s_k/t))``
  summed and divided by ``2B``, ``t = 0.5``. Views: ``head(x) = out(relu(dense(x)))``,
  the pooled [CLS] for the text (one text head for both terms), the
  flattened ViT tokens and the ResNet vector for the images.
* Word gather: the index of a word is the position of its first piece in the
  piece list *without* the special tokens, gathered from the sequence *with*
  ``[CLS]`` at 0 (one piece too early; ``faithful_word_offset``). The project's
  default reads the word's own first piece: that index plus one.
* CRF: pytorch-crf's log-likelihood over the words (mask: labels not -100),
  ``reduction='mean'`` over the batch; the total loss is
  ``2 * (alpha * NLL + (1 - alpha) * (CL_vit + CL_res))``.

Where the project departs on purpose (docs/models.md, 2M-NER), the
re-derivation applies the documented departure explicitly: a post without an
image gets a zero context in both blocks and is left out of NT-Xent (the
reference's loss over the posts that have one); labels are numbered in the
model's order. Dropout is off (eval mode) so the computations are
deterministic; both sides run in float32.

``tests/test_models_2mner_mutations.py`` plants known faults into a copy of
the package and checks that the ``fixed`` tests here fail on each.
"""

from __future__ import annotations

import functools

import math
import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F
from transformers import BertTokenizerFast

from umt_helpers import single_threaded
from xlingual.data.sample import Sample
from xlingual.models.contrastive import nt_xent
from xlingual.models.crf import MaskedCrf
from xlingual.models.mner2 import Mner2Model, paired_lookup
from xlingual.models.mner2_layers import TokenCrossAttention, VectorCrossAttention
from xlingual.testing.tiny_bert import build_tiny_bert

TOL = {"atol": 1e-5, "rtol": 1e-5}
"""Two float32 computations of one function that sum in another order differ by float32's rounding, in proportion to the
tensor's scale (hypothesis found 1.8e-5 on a gradient): the block-level checks run in float64 (:func:`in_float64`), and
:func:`assert_close` scales ``atol`` by the expected tensor's largest magnitude for the whole-model checks, which run the
float32 tiny BERT. Every planted fault moves the results by far more (tests/test_models_2mner_mutations.py)."""


def in_float64(check):
    """Run a block-level check in float64: the comparison then sees the two computations, not float32's summation order."""
    @functools.wraps(check)
    def run(*args, **kwargs):
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            return check(*args, **kwargs)
        finally:
            torch.set_default_dtype(previous)
    return run


def assert_close(actual: torch.Tensor, expected: torch.Tensor, msg=None) -> None:
    """``torch.testing.assert_close`` at :data:`TOL`, its absolute tolerance relative to the expected tensor's scale."""
    scale = max(1.0, float(expected.detach().abs().max())) if expected.numel() else 1.0
    torch.testing.assert_close(actual, expected, atol=TOL["atol"] * scale, rtol=TOL["rtol"], msg=msg)
VIT_TOKENS, HIDDEN, RESNET_DIM = 50, 32, 16
"""50 tokens as CLIP ViT-B/32 gives; channels equal the tiny encoder's hidden size so the key-as-query flaw applies."""
REFERENCE_ALPHA, REFERENCE_TEMPERATURE = 0.8, 0.5
"""main.py's --alpha default and model_loss.py's ContrastiveLoss default."""
IN_VOCAB = ["Anna", "visits", "New", "York", "today", "Paris"]
OUT_OF_VOCAB = ["zqx", "Kbw", "mmmm", "j", "vvz"]
"""Words the tiny vocabulary lacks: several pieces each, so the first-piece gather is exercised."""
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]

_one_thread = pytest.fixture(scope="module", autouse=True)(single_threaded)


# ---------------------------------------------------------------------- the re-derivation


def ref_linear(x: torch.Tensor, w: Mapping[str, torch.Tensor], name: str) -> torch.Tensor:
    return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]


def ref_bert_attention(query_hs: torch.Tensor, kv_hs: torch.Tensor, w: Mapping[str, torch.Tensor], heads: int, *,
                       key_as_query: bool, present: torch.Tensor, key_mask: torch.Tensor | None = None, eps: float = 1e-12
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's ``BertAttention`` (dropout off): multi-head attention from ``query_hs`` over ``kv_hs``, then add & norm.

    ``w`` holds ``query``, ``key``, ``value``, ``dense`` (the output layer) and ``norm``.
    ``key_mask`` (B, N): keys to leave out (-10000 on their scores, as
    ``get_extended_attention_mask``). ``present`` (B,): the project's
    departure, a post without an image gets no context.
    """
    batch, length, hidden = query_hs.shape
    size = hidden // heads

    def split(x: torch.Tensor) -> torch.Tensor:  # (B, n, H) -> (B, heads, n, size)
        return x.reshape(x.shape[0], x.shape[1], heads, size).permute(0, 2, 1, 3)

    q = split(ref_linear(query_hs, w, "key" if key_as_query else "query"))
    k, v = split(ref_linear(kv_hs, w, "key")), split(ref_linear(kv_hs, w, "value"))
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(size)
    if key_mask is not None:
        scores = scores + (1.0 - key_mask.to(scores.dtype))[:, None, None, :] * -10000.0
    probs = torch.softmax(scores, dim=-1)  # over the keys
    context = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(batch, length, heads * size)
    context = context * present.to(context.dtype)[:, None, None]
    out = ref_linear(context, w, "dense") + query_hs
    return F.layer_norm(out, (hidden,), w["norm.weight"], w["norm.bias"], eps), probs


def ref_resnet_block(words: torch.Tensor, vector: torch.Tensor, w: Mapping[str, torch.Tensor], heads: int, *,
                     word_mask: torch.Tensor, present: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``dense_resnet`` the vector, repeat it once per word, attend over the copies (queries through the key layer, as the reference)."""
    copies = ref_linear(vector, w, "dense_resnet")[:, None, :].expand_as(words)
    return ref_bert_attention(words, copies, w, heads, key_as_query=True, present=present, key_mask=word_mask, eps=eps)[0]


def ref_nt_xent(emb_i: torch.Tensor, emb_j: torch.Tensor, temperature: float = REFERENCE_TEMPERATURE) -> torch.Tensor:
    """model_loss.py's ContrastiveLoss on paired views (B, D)."""
    batch = emb_i.shape[0]
    z = torch.cat([F.normalize(emb_i, dim=1), F.normalize(emb_j, dim=1)], dim=0)
    sim = F.cosine_similarity(z.unsqueeze(1), z.unsqueeze(0), dim=2)
    positives = torch.cat([torch.diagonal(sim, batch), torch.diagonal(sim, -batch)])
    off_diagonal = (~torch.eye(2 * batch, dtype=torch.bool)).to(sim.dtype)
    denominator = (off_diagonal * torch.exp(sim / temperature)).sum(dim=1)
    return -torch.log(torch.exp(positives / temperature) / denominator).sum() / (2 * batch)


def ref_nt_xent_over_images(text: torch.Tensor, image: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """The reference's NT-Xent over the posts that have an image (the project masks the others); 0 without any."""
    keep = present.nonzero().squeeze(1)
    return ref_nt_xent(text[keep], image[keep]) if len(keep) else text.sum() * 0.0


def ref_crf_log_likelihood(emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor,
                           start: torch.Tensor, end: torch.Tensor, transitions: torch.Tensor) -> torch.Tensor:
    """pytorch-crf's log p(tags | emissions) per sequence, written out step by step (masks are prefixes, step 0 on)."""
    out = []
    for row in range(emissions.shape[0]):
        length = int(mask[row].sum())
        e, y = emissions[row, :length], tags[row, :length]
        gold = start[y[0]] + e[0, y[0]] + end[y[-1]]
        for t in range(1, length):
            gold = gold + transitions[y[t - 1], y[t]] + e[t, y[t]]
        alpha = start + e[0]
        for t in range(1, length):
            alpha = torch.logsumexp(alpha[:, None] + transitions + e[t][None, :], dim=0)
        out.append(gold - torch.logsumexp(alpha + end, dim=0))
    return torch.stack(out)


def ref_word_index(tokenizer: BertTokenizerFast, posts: Sequence[Sequence[str]], faithful: bool) -> tuple[dict, torch.Tensor]:
    """dataset/data.py's collate: pieces padded to the longest post, and each word's gather index (pad 0).

    The reference counts positions among the pieces without ``[CLS]``/``[SEP]``;
    the project's fix adds the one ``[CLS]`` in front.
    """
    encoding = tokenizer([list(p) for p in posts], is_split_into_words=True, padding="longest", return_tensors="pt")
    width = max(len(p) for p in posts)
    index = []
    for row in range(len(posts)):
        word_ids = [w for w in encoding.word_ids(row) if w is not None]
        first, previous = [], -1
        for i, w in enumerate(word_ids):
            if w > previous:
                first.append(i)
                previous = w
        assert len(first) == len(posts[row])
        shifted = first if faithful else [i + 1 for i in first]
        index.append(shifted + [0] * (width - len(first)))
    return encoding, torch.tensor(index)


def ref_head(x: torch.Tensor, w: Mapping[str, torch.Tensor], name: str) -> torch.Tensor:
    return ref_linear(F.relu(ref_linear(x, w, f"{name}.dense")), w, f"{name}.output")


def ref_forward(model: Mner2Model, tokenizer: BertTokenizerFast, posts: Sequence[Sample], vit: torch.Tensor,
                resnet: torch.Tensor, present: torch.Tensor, *, key_as_query: bool, faithful_offset: bool) -> dict[str, torch.Tensor]:
    """The reference's forward and total loss at its defaults, reading the project model's weights.

    The encoder is the same Hugging Face BERT module (the reference's ``AutoModel``);
    every layer after it is computed here from the weight tensors.
    """
    w = dict(model.named_parameters())
    heads = model.encoder.config.num_attention_heads
    eps = model.encoder.config.layer_norm_eps
    encoding, index = ref_word_index(tokenizer, [p.tokens for p in posts], faithful_offset)
    encoded = model.encoder(input_ids=encoding["input_ids"], attention_mask=encoding["attention_mask"])
    states = encoded.last_hidden_state
    words = torch.gather(states, 1, index.unsqueeze(-1).expand(-1, -1, states.shape[-1]))
    width = index.shape[1]
    labels = torch.tensor([[model.label_names.index(label) for label in p.labels] + [-100] * (width - len(p.labels)) for p in posts])
    crf_mask = labels != -100

    def block(prefix: str, names: Mapping[str, str]) -> dict[str, torch.Tensor]:
        return {ours: w[f"{prefix}.{theirs}"] for ours, theirs in names.items()}

    vit_w = block("vit_attention", {"key.weight": "key.weight", "key.bias": "key.bias", "value.weight": "value.weight",
                                    "value.bias": "value.bias", "dense.weight": "output.dense.weight", "dense.bias": "output.dense.bias",
                                    "norm.weight": "output.norm.weight", "norm.bias": "output.norm.bias"})
    if not key_as_query:
        vit_w |= block("vit_attention", {"query.weight": "query.weight", "query.bias": "query.bias"})
    fuse_vit = ref_bert_attention(words, vit, vit_w, heads, key_as_query=key_as_query, present=present, eps=eps)[0]
    res_w = block("resnet_attention", {"value.weight": "value.weight", "value.bias": "value.bias", "dense.weight": "output.dense.weight",
                                       "dense.bias": "output.dense.bias", "norm.weight": "output.norm.weight", "norm.bias": "output.norm.bias"})
    res_w |= {"dense_resnet.weight": w["resnet_proj.weight"], "dense_resnet.bias": w["resnet_proj.bias"]}
    # The reference's query/key layers of this block get no gradient; any weights give the same output.
    generator = torch.Generator().manual_seed(int(index.sum()))
    res_w |= {"key.weight": torch.randn(HIDDEN, HIDDEN, generator=generator), "key.bias": torch.randn(HIDDEN, generator=generator)}
    fuse_res = ref_resnet_block(words, resnet, res_w, heads, word_mask=crf_mask, present=present, eps=eps)
    emissions = ref_linear(ref_linear(torch.cat([fuse_vit, fuse_res], dim=-1), w, "fuse"), w, "classifier")
    crf = -ref_crf_log_likelihood(emissions, labels.clamp(min=0), crf_mask, w["crf.start_transitions"], w["crf.end_transitions"],
                                  w["crf.transitions"]).mean()
    text = ref_head(encoded.pooler_output, w, "text_head")
    cl_vit = ref_nt_xent_over_images(text, ref_head(vit.reshape(len(posts), -1), w, "vit_head"), present)
    cl_res = ref_nt_xent_over_images(text, ref_head(resnet, w, "resnet_head"), present)
    loss = 2 * (REFERENCE_ALPHA * crf + (1 - REFERENCE_ALPHA) * (cl_vit + cl_res))
    return {"emissions": emissions, "crf_loss": crf, "cl_vit": cl_vit, "cl_resnet": cl_res, "loss": loss, "word_mask": crf_mask}


# ---------------------------------------------------------------------- comparison helpers


def assert_same_gradients(ours: torch.Tensor, theirs: torch.Tensor, inputs: Sequence[torch.Tensor], names: Sequence[str]) -> None:
    """d(ours)/d(inputs) equals d(theirs)/d(inputs), input by input (an input one side does not use has a zero gradient)."""
    got = torch.autograd.grad(ours, inputs, retain_graph=True, allow_unused=True)
    want = torch.autograd.grad(theirs, inputs, retain_graph=True, allow_unused=True)
    for name, tensor, g, r in zip(names, inputs, got, want):
        g = torch.zeros_like(tensor) if g is None else g
        r = torch.zeros_like(tensor) if r is None else r
        assert_close(g, r, msg=lambda m, name=name: f"gradient of {name}: {m}")


def random_inputs(seed: int, batch: int, length: int, tokens: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    words = torch.randn(batch, length, HIDDEN, generator=generator).requires_grad_()
    image = torch.randn(batch, tokens, dim, generator=generator).requires_grad_()
    return words, image


def randomise(module: torch.nn.Module, seed: int) -> None:
    """Non-trivial weights everywhere (LayerNorm's default 1/0 would hide a missing scale or shift)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.5)


# ---------------------------------------------------------------------- the ViT block


@in_float64
def check_vit_block(seed: int, batch: int, length: int, tokens: int, heads: int, key_as_query: bool, present: list[bool]) -> None:
    torch.manual_seed(seed)
    block = TokenCrossAttention(HIDDEN, HIDDEN, heads, dropout=0.1, query_from_key=key_as_query).eval()
    randomise(block, seed)
    words, image = random_inputs(seed, batch, length, tokens, HIDDEN)
    present_t = torch.tensor(present)
    names = {"key.weight": "key.weight", "key.bias": "key.bias", "value.weight": "value.weight", "value.bias": "value.bias",
             "dense.weight": "output.dense.weight", "dense.bias": "output.dense.bias",
             "norm.weight": "output.norm.weight", "norm.bias": "output.norm.bias"}
    if not key_as_query:
        names |= {"query.weight": "query.weight", "query.bias": "query.bias"}
    params = dict(block.named_parameters())
    w = {ours: params[theirs] for ours, theirs in names.items()}
    assert set(w.values()) == set(params.values())  # every weight of the block is the reference's
    ours, probs = block(words, image, present_t)
    theirs, ref_probs = ref_bert_attention(words, image, w, heads, key_as_query=key_as_query, present=present_t)
    assert_close(ours, theirs)
    assert_close(probs, ref_probs)
    probe = torch.randn(ours.shape, generator=torch.Generator().manual_seed(seed + 1))
    assert_same_gradients((ours * probe).sum(), (theirs * probe).sum(), [words, image, *params.values()], ["words", "image", *params])


@pytest.mark.parametrize("key_as_query", [False, True], ids=["own-query", "key-as-query"])
def test_vit_block_is_the_reference_attention_fixed(key_as_query):
    """50 tokens, 3 posts of 4 words, 4 heads; the middle post has no image."""
    check_vit_block(0, 3, 4, VIT_TOKENS, 4, key_as_query, [True, False, True])


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 2**16), st.integers(1, 4), st.integers(1, 6), st.sampled_from([1, 2, 7, VIT_TOKENS]),
       st.sampled_from([1, 2, 4, 8]), st.booleans(), st.data())
def test_vit_block_is_the_reference_attention(seed, batch, length, tokens, heads, key_as_query, data):
    present = data.draw(st.lists(st.booleans(), min_size=batch, max_size=batch))
    check_vit_block(seed, batch, length, tokens, heads, key_as_query, present)


def test_vit_block_key_as_query_differs_from_own_query():
    """The switch matters: with its own query layer the block is another function (else the test above proves little)."""
    torch.manual_seed(0)
    words, image = random_inputs(0, 2, 3, VIT_TOKENS, HIDDEN)
    flawed = TokenCrossAttention(HIDDEN, HIDDEN, 4, query_from_key=True).eval()
    fixed = TokenCrossAttention(HIDDEN, HIDDEN, 4).eval()
    fixed.load_state_dict(flawed.state_dict(), strict=False)
    present = torch.tensor([True, True])
    assert not torch.allclose(flawed(words, image, present)[0], fixed(words, image, present)[0], atol=1e-3)


# ---------------------------------------------------------------------- the ResNet block


@in_float64
def check_resnet_block(seed: int, batch: int, length: int, heads: int, present: list[bool], words_per_post: list[int]) -> None:
    """The project's one-key block against the reference's attention over per-word copies, queries and keys random."""
    torch.manual_seed(seed)
    proj = torch.nn.Linear(RESNET_DIM, HIDDEN)
    block = VectorCrossAttention(HIDDEN, HIDDEN, dropout=0.1).eval()
    randomise(block, seed)
    randomise(proj, seed + 2)
    words, _ = random_inputs(seed, batch, length, 1, HIDDEN)
    vector = torch.randn(batch, RESNET_DIM, generator=torch.Generator().manual_seed(seed + 3)).requires_grad_()
    present_t = torch.tensor(present)
    word_mask = torch.arange(length)[None, :] < torch.tensor(words_per_post)[:, None]
    params = dict(block.named_parameters())
    generator = torch.Generator().manual_seed(seed + 4)
    w = {"dense_resnet.weight": proj.weight, "dense_resnet.bias": proj.bias,
         "key.weight": torch.randn(HIDDEN, HIDDEN, generator=generator), "key.bias": torch.randn(HIDDEN, generator=generator),
         "value.weight": params["value.weight"], "value.bias": params["value.bias"],
         "dense.weight": params["output.dense.weight"], "dense.bias": params["output.dense.bias"],
         "norm.weight": params["output.norm.weight"], "norm.bias": params["output.norm.bias"]}
    ours = block(words, proj(vector), present_t)
    theirs = ref_resnet_block(words, vector, w, heads, word_mask=word_mask, present=present_t)
    assert_close(ours, theirs)
    probe = torch.randn(ours.shape, generator=torch.Generator().manual_seed(seed + 1))
    inputs = [words, vector, proj.weight, proj.bias, *params.values()]
    assert_same_gradients((ours * probe).sum(), (theirs * probe).sum(), inputs, ["words", "vector", "proj.weight", "proj.bias", *params])


def test_resnet_block_is_the_reference_attention_over_copies_fixed():
    check_resnet_block(0, 3, 5, 4, [True, True, False], [5, 2, 3])


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**16), st.integers(1, 4), st.integers(1, 6), st.sampled_from([1, 2, 4, 8]), st.data())
def test_resnet_block_is_the_reference_attention_over_copies(seed, batch, length, heads, data):
    present = data.draw(st.lists(st.booleans(), min_size=batch, max_size=batch))
    words = data.draw(st.lists(st.integers(1, length), min_size=batch, max_size=batch))
    check_resnet_block(seed, batch, length, heads, present, words)


# ---------------------------------------------------------------------- NT-Xent


def check_nt_xent(seed: int, batch: int, dim: int, present: list[bool]) -> None:
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, dim, generator=generator).requires_grad_()
    b = torch.randn(batch, dim, generator=generator).requires_grad_()
    valid = torch.tensor(present)
    ours = nt_xent(a, b, valid)  # the default temperature: the reference's 0.5
    theirs = ref_nt_xent_over_images(a, b, valid)
    assert_close(ours, theirs)
    assert_same_gradients(ours, theirs, [a, b], ["text view", "image view"])


def test_nt_xent_is_the_reference_at_temperature_half_fixed():
    check_nt_xent(0, 5, 8, [True, True, False, True, True])


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**16), st.integers(1, 8), st.integers(1, 12), st.data())
def test_nt_xent_is_the_reference_at_temperature_half(seed, batch, dim, data):
    check_nt_xent(seed, batch, dim, data.draw(st.lists(st.booleans(), min_size=batch, max_size=batch)))


# ---------------------------------------------------------------------- CRF


def test_crf_nll_is_the_reference_mean_over_the_batch_fixed():
    torch.manual_seed(0)
    crf = MaskedCrf(len(LABELS))
    emissions = torch.randn(3, 5, len(LABELS), requires_grad=True)
    tags = torch.randint(0, len(LABELS), (3, 5))
    mask = torch.arange(5)[None, :] < torch.tensor([5, 1, 3])[:, None]
    ours = crf.nll(emissions, tags, mask, reduction="mean")
    theirs = -ref_crf_log_likelihood(emissions, tags, mask, crf.start_transitions, crf.end_transitions, crf.transitions).mean()
    assert_close(ours, theirs)
    assert_same_gradients(ours, theirs, [emissions, *crf.parameters()], ["emissions", "start", "end", "transitions"])


# ---------------------------------------------------------------------- the whole model


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), IN_VOCAB, hidden_size=HIDDEN, num_attention_heads=4)


@pytest.fixture(scope="module")
def fast_tokenizer(encoder_dir):
    """The reference's tokenizer call (``is_split_into_words``, ``word_ids``) needs a fast tokenizer, on the same vocabulary."""
    return BertTokenizerFast.from_pretrained(str(encoder_dir))


MODELS: dict[tuple[str, bool, bool], Mner2Model] = {}


def model_for(encoder_dir, key_as_query: bool, faithful_offset: bool) -> Mner2Model:
    """One model per switch pair, at every other setting's default (alpha, temperature: the config's own)."""
    key = (str(encoder_dir), key_as_query, faithful_offset)
    if key not in MODELS:
        torch.manual_seed(1)
        model = Mner2Model.build({"encoder": str(encoder_dir), "vit_tokens": VIT_TOKENS, "visual_dim": HIDDEN, "resnet_dim": RESNET_DIM,
                                  "faithful_query_bug": key_as_query, "faithful_word_offset": faithful_offset})
        randomise(model.crf, 5)  # transitions of a realistic size, so the CRF's normaliser is not near-uniform
        MODELS[key] = model.eval()
    return MODELS[key]


def visual_arrays(posts: Sequence[Sample], seed: int, missing: set[str]):
    def arrays(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([seed, zlib.crc32(sample.id.encode())])
        return rng.standard_normal((VIT_TOKENS, HIDDEN)).astype(np.float32), rng.standard_normal(RESNET_DIM).astype(np.float32)

    lookup = paired_lookup(lambda s: (arrays(s)[0], s.id not in missing), lambda s: (arrays(s)[1], s.id not in missing))
    present = torch.tensor([p.id not in missing for p in posts])
    vit = torch.from_numpy(np.stack([arrays(p)[0] for p in posts])) * present[:, None, None]
    resnet = torch.from_numpy(np.stack([arrays(p)[1] for p in posts])) * present[:, None]
    return lookup, vit, resnet, present


def check_model(encoder_dir, tokenizer, posts: list[Sample], missing: set[str], key_as_query: bool, faithful_offset: bool, seed: int = 0) -> None:
    model = model_for(encoder_dir, key_as_query, faithful_offset)
    lookup, vit, resnet, present = visual_arrays(posts, seed, missing)
    batch = model.collate(model.encode(posts, lookup))
    ours = model(batch)
    theirs = ref_forward(model, tokenizer, posts, vit, resnet, present, key_as_query=key_as_query, faithful_offset=faithful_offset)
    on = theirs["word_mask"]
    assert torch.equal(batch["word_mask"], on)
    assert_close(ours["emissions"][on], theirs["emissions"][on])
    for term in ("crf_loss", "cl_vit", "cl_resnet", "loss"):
        assert_close(ours[term], theirs[term], msg=lambda m, term=term: f"{term}: {m}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert_same_gradients(ours["loss"], theirs["loss"], [p for _, p in named], [n for n, _ in named])


def post(index: int, words: Sequence[str], labels: Sequence[str]) -> Sample:
    return Sample(id=f"p{index}", tokens=list(words), labels=list(labels), images=[f"p{index}.jpg"])


FIXED_POSTS = [
    post(0, ["Anna", "zqx", "visits", "New", "York"], ["B-PER", "O", "O", "B-LOC", "I-LOC"]),
    post(1, ["Kbw", "today"], ["B-ORG", "O"]),
    post(2, ["mmmm"], ["B-MISC"]),
    post(3, ["Paris", "j", "vvz", "today"], ["B-LOC", "O", "B-PER", "I-PER"]),
]


@pytest.mark.parametrize("key_as_query,faithful_offset", [(False, False), (True, True)], ids=["defaults", "faithful"])
def test_model_is_the_reference_forward_and_loss_fixed(encoder_dir, fast_tokenizer, key_as_query, faithful_offset):
    """Four posts of 1-5 words (word padding, multi-piece words), one without an image; loss and every parameter's gradient."""
    check_model(encoder_dir, fast_tokenizer, FIXED_POSTS, {"p1"}, key_as_query, faithful_offset)


WORDS = st.sampled_from(IN_VOCAB + OUT_OF_VOCAB)


@settings(max_examples=8, deadline=None)
@given(st.lists(st.tuples(st.lists(st.tuples(WORDS, st.sampled_from(LABELS)), min_size=1, max_size=6), st.booleans()), min_size=1, max_size=4),
       st.booleans(), st.booleans(), st.integers(0, 2**16))
def test_model_is_the_reference_forward_and_loss(encoder_dir, fast_tokenizer, drawn, key_as_query, faithful_offset, seed):
    posts = [post(i, [w for w, _ in words], [label for _, label in words]) for i, (words, _) in enumerate(drawn)]
    missing = {p.id for p, (_, has_image) in zip(posts, drawn) if not has_image}
    check_model(encoder_dir, fast_tokenizer, posts, missing, key_as_query, faithful_offset, seed)


def test_word_gather_is_the_reference_offset_or_the_first_piece_fixed(encoder_dir, fast_tokenizer):
    """Text only: emissions are ``classifier(states[index])`` with the reference's index (faithful) or index + 1 (default)."""
    for faithful in (False, True):
        torch.manual_seed(0)
        model = Mner2Model.build({"encoder": str(encoder_dir), "use_image": False, "faithful_word_offset": faithful}).eval()
        encoding, index = ref_word_index(fast_tokenizer, [p.tokens for p in FIXED_POSTS], faithful)
        batch = model.collate(model.encode(FIXED_POSTS, None))
        assert torch.equal(batch["input_ids"], encoding["input_ids"])  # the same pieces as the reference's tokenizer call
        states = model.encoder(input_ids=encoding["input_ids"], attention_mask=encoding["attention_mask"]).last_hidden_state
        expected = ref_linear(torch.gather(states, 1, index.unsqueeze(-1).expand(-1, -1, HIDDEN)), dict(model.named_parameters()), "classifier")
        on = batch["word_mask"]
        assert_close(model(batch)["emissions"][on], expected[on])
        assert (index[0, 0] == 0) == faithful  # the faithful gather reads [CLS] for the first word
