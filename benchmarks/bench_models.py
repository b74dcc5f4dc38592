"""Training speed and memory of UMT at full size on this machine (random weights, nothing downloaded).

UMT in the cross-lingual configuration: bert-base-multilingual-cased's shape
(12 layers, H 768, vocabulary 119,547, random init from a BertConfig), bottom 3
layers + embeddings frozen, 12 cross-modal heads, batch 16, 128 word pieces,
ResNet-152-shaped cached region features (49 x 2048, float16 on disk like the
feature cache, float32 in the batch). One training step = collate + forward +
backward + AdamW step. "Outside the model" = the per-step share of encode
(amortised: the engine encodes a dataset once) and collate.

    .venv/bin/python benchmarks/bench_models.py             # 4 measured steps (about 1-3 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_models.py --steps 8 --freeze 0
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import BertConfig, BertModel

from _mbert_training import MBERT_VOCAB, mbert_shaped_tokenizer, measure_steps, print_machine, start, synthetic_posts, training_options
from _record import report_training_step
from xlingual.data.sample import Sample
from xlingual.models.umt import UmtConfig, UmtModel
from xlingual.models.bert_encoder import drop_pooler


def main() -> None:
    parser = training_options(__doc__, steps=4, batch=16, length_help="word pieces per post incl. [CLS]/[SEP]")
    parser.add_argument("--freeze", type=int, default=3, help="frozen bottom encoder layers (3 for cross-lingual mBERT)")
    args = parser.parse_args()
    out = start(__file__, args, f"{args.steps} measured steps after one warm-up, bottom {args.freeze} layers frozen")

    tokenizer = mbert_shaped_tokenizer()
    encoder = drop_pooler(BertModel(BertConfig(vocab_size=MBERT_VOCAB)))
    config = UmtConfig(encoder="bert-base-multilingual-cased(random)", max_length=args.length, freeze_bottom_layers=args.freeze)
    model = UmtModel(config, encoder, tokenizer)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=5e-5, weight_decay=0.01)

    steps = args.steps + 1
    posts = synthetic_posts(args.batch * steps, args.length - 2, seed=0)
    cache = np.random.default_rng(1).standard_normal((len(posts), 49, 2048)).astype(np.float16)

    def visual(sample: Sample) -> tuple[np.ndarray, bool]:
        return cache[int(sample.id)].astype(np.float32), True

    def train_step(batch: dict) -> None:
        loss = model(batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()

    measured = measure_steps(model, posts, visual, args.batch, steps, train_step)
    assert measured.last_batch["input_ids"].shape == (args.batch, args.length)

    n_params = sum(p.numel() for p in model.parameters())
    print_machine()
    print(f"UMT mBERT-shaped: {n_params / 1e6:.1f} M parameters ({sum(p.numel() for p in trainable) / 1e6:.1f} M trainable, bottom {args.freeze} layers frozen)")
    print(f"batch {args.batch} x {args.length} pieces, 49 x 2048 regions, {args.steps} measured steps")
    what = f"UMT, mBERT shape ({n_params / 1e6:.0f} M parameters), batch {args.batch} x {args.length}, cached-feature inputs"
    report_training_step(out, what, measured.timing, args.batch, "AdamW")


if __name__ == "__main__":
    main()
