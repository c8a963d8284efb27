"""A character-level tokenizer built offline with the `tokenizers` library.

Every printable ASCII character is one token, plus newline and tab, so arithmetic prompts
("42+34=") and other small text tasks tokenize one character at a time. `<|endoftext|>` is the
end-of-sequence token and also the padding token; there is no BOS. Padding is on the left, as
batched generation needs.
"""

from __future__ import annotations

import string

EOS_TOKEN = "<|endoftext|>"
UNK_TOKEN = "<|unk|>"
SPECIAL_TOKENS = [EOS_TOKEN, UNK_TOKEN]

# Digits and arithmetic first (stable low ids), then the rest of printable ASCII.
_FIRST = "0123456789+-*/= \n"
CHARACTERS = _FIRST + "".join(c for c in string.ascii_letters + string.punctuation + "\t" if c not in _FIRST)


def build_tokenizer():
    """A `transformers.PreTrainedTokenizerFast`, one token per character, eos = pad = <|endoftext|>."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in CHARACTERS:
        vocab.setdefault(ch, len(vocab))
    # BPE with no merges and no pre-tokenizer: the text is split into its characters, each looked up.
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK_TOKEN))
    core.decoder = decoders.Fuse()  # join the characters back without separators
    core.add_special_tokens(SPECIAL_TOKENS)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=512,
    )
    return tok
