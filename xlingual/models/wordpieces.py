"""Splitting tokenised posts into a BERT tokenizer's word pieces, token by token (UMT and 2M-NER).

The datasets come tokenised and are labelled per token; the encoders read
word pieces. Both models keep the pieces of each token apart, so a token's
label can go on its first piece and a prediction can come back to its token.
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase


def pieces_per_token(tokenizer: PreTrainedTokenizerBase, token_lists: Sequence[Sequence[str]]) -> list[list[list[int]]]:
    """Word-piece ids of every token of every post (batched through a fast tokenizer when there is one)."""
    if not token_lists:
        return []
    if getattr(tokenizer, "is_fast", False):
        # verbose=False: posts longer than the encoder's limit are cut later, by align(), not warned about here.
        encoded = tokenizer([list(tokens) for tokens in token_lists], is_split_into_words=True, add_special_tokens=False, verbose=False)
        result = []
        for index, tokens in enumerate(token_lists):
            per_token: list[list[int]] = [[] for _ in tokens]
            for piece_id, word in zip(encoded["input_ids"][index], encoded.word_ids(index)):
                if word is not None:
                    per_token[word].append(piece_id)
            result.append(per_token)
        return result
    return [[tokenizer.convert_tokens_to_ids(tokenizer.tokenize(token)) for token in tokens] for tokens in token_lists]
