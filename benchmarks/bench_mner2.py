"""Training speed and memory of 2M-NER at full size on this machine (random weights, nothing downloaded).

2M-NER as the reference trains it: bert-base-multilingual-cased's shape (12
layers, H 768, vocabulary 119,547, random init from a BertConfig, pooler
kept for the contrastive text view), nothing frozen, Adam, batch 32, CLIP
ViT-B/32 token features (50 x 768) and the ResNet-152 grid (49 x 2048,
pooled to its 2048 vector by the feature side's ``pooled_vector`` in the
lookup, as ``pooled_lookup`` does), both float16 in memory like the feature
caches on disk and float32 in the batch. One
training step = collate + forward + backward + Adam step. "Outside the
model" = the per-step share of encode (amortised: the engine encodes a
dataset once; it includes the visual lookups) and collate.

    .venv/bin/python benchmarks/bench_mner2.py                 # 2 measured steps at batch 32 (a few minutes on 2 cores)
    .venv/bin/python benchmarks/bench_mner2.py --length 64 --steps 4
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import BertConfig, BertModel

from _mbert_training import MBERT_VOCAB, mbert_shaped_tokenizer, measure_steps, print_machine, start, synthetic_posts, training_options
from _record import report_training_step
from xlingual.data.sample import Sample
from xlingual.features.lookup import pooled_vector
from xlingual.models.mner2 import Mner2Config, Mner2Model

VIT_SHAPE, RESNET_GRID = (50, 768), (49, 2048)


def main() -> None:
    parser = training_options(__doc__, steps=2, batch=32, length_help="word pieces per post incl. [CLS]/[SEP] (one piece per word here)")
    args = parser.parse_args()
    out = start(__file__, args, f"{args.steps} measured steps after one warm-up, nothing frozen, Adam")

    tokenizer = mbert_shaped_tokenizer()
    encoder = BertModel(BertConfig(vocab_size=MBERT_VOCAB))
    config = Mner2Config(encoder="bert-base-multilingual-cased(random)", max_length=args.length)
    model = Mner2Model(config, encoder, tokenizer)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-5)

    steps = args.steps + 1
    posts = synthetic_posts(args.batch * steps, args.length - 2, seed=0)
    rng = np.random.default_rng(1)
    vit_cache = rng.standard_normal((len(posts), *VIT_SHAPE)).astype(np.float16)
    resnet_cache = rng.standard_normal((len(posts), *RESNET_GRID)).astype(np.float16)

    def visual(sample: Sample):
        row = int(sample.id)
        return {"vit": vit_cache[row], "resnet": pooled_vector(resnet_cache[row])}, True

    def train_step(batch: dict) -> dict[str, float]:
        result = model(batch)
        optimizer.zero_grad(set_to_none=True)
        result["loss"].backward()
        optimizer.step()
        return {k: round(float(v.detach()), 3) for k, v in result.items() if k != "emissions"}

    measured = measure_steps(model, posts, visual, args.batch, steps, train_step)
    batch = measured.last_batch
    assert batch["input_ids"].shape == (args.batch, args.length) and batch["vit"].shape == (args.batch, *VIT_SHAPE)

    n_params = sum(p.numel() for p in model.parameters())
    print_machine()
    print(f"2M-NER mBERT-shaped: {n_params / 1e6:.1f} M parameters (all trainable; ViT-token head {model.vit_head.dense.weight.numel() / 1e6:.1f} M)")
    print(f"batch {args.batch} x {args.length} pieces, ViT tokens 50 x 768 + ResNet vector 2048, {args.steps} measured steps")
    what = f"2M-NER, mBERT shape ({n_params / 1e6:.0f} M parameters), batch {args.batch} x {args.length}, ViT 50x768 + ResNet 2048 cached inputs"
    report_training_step(out, what, measured.timing, args.batch, "Adam", "encode incl. visual lookups")
    print(f"loss terms of the measured steps (random weights, random inputs): {measured.results}")


if __name__ == "__main__":
    main()
