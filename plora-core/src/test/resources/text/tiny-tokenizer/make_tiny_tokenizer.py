#!/usr/bin/env python3
"""Writes tokenizer.json and tokenizer_config.json of the tiny test tokenizer beside this script.

A byte-level BPE as Llama 3 and Qwen use it: the 256 bytes are ids 0..255 (id = byte value, so
ids can be derived by hand), then the merges below in rank order, then the special tokens. The
post-processor prepends <s>, as Llama's does. Run: python3 make_tiny_tokenizer.py
"""
import json
import os


def bytes_to_unicode():
    """GPT-2's map of bytes to printable characters (space is 'Ġ', newline 'Ċ')."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


# Each merge joins two tokens already in the vocabulary; its result is the next id.
MERGES = [
    "h e", "l l", "he ll", "hell o",                # hello
    "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d",     # Ġworld
    "Ġ t", "Ġt h", "Ġth e",                         # Ġthe
    "e r", "u s", "us er",                          # user
    "a s", "as s", "i s", "ass is", "t a", "n t", "ta nt", "assis tant",  # assistant
    "s y", "sy s", "t e", "te m", "sys tem",        # system
    "Ġ a", "Ġ i", "Ġi s", "Ġ c", "Ġc a", "Ġca t",   # Ġa Ġis Ġcat
    "Ġ d", "Ġd o", "Ġdo g", "Ġ s", "a t", "Ġs at",   # Ġdog Ġsat
    "Ċ Ċ",                                          # blank line
    "H i", "Ġ o", "Ġo n",                           # Hi Ġon
]
SPECIAL = ["<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"]

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
          " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def main():
    byte_chars = bytes_to_unicode()
    vocab = {byte_chars[b]: b for b in range(256)}
    for merge in MERGES:
        left, right = merge.split(" ")
        assert left in vocab and right in vocab, merge
        assert left + right not in vocab, merge
        vocab[left + right] = len(vocab)
    added = []
    for token in SPECIAL:
        added.append({"id": len(vocab) + len(added), "content": token, "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": True})
    bos = added[0]["id"]
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [bos], "tokens": ["<s>"]}},
        },
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": MERGES},
    }
    config = {
        "bos_token": "<s>",
        "eos_token": {"__type": "AddedToken", "content": "<|im_end|>", "lstrip": False, "normalized": False,
                      "rstrip": False, "single_word": False},
        "pad_token": "<pad>",
        "chat_template": CHATML,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 2048,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    here = os.path.dirname(os.path.abspath(__file__))
    for name, value in (("tokenizer.json", tokenizer), ("tokenizer_config.json", config)):
        with open(os.path.join(here, name), "w", encoding="utf-8") as f:
            json.dump(value, f, ensure_ascii=False, indent=2)
            f.write("\n")
    print(len(vocab), "model tokens,", len(added), "special tokens, ids", added[0]["id"], "to", added[-1]["id"])


if __name__ == "__main__":
    main()
