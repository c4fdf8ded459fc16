"""``tiny-random``: a tiny random Llama with a BPE tokenizer trained on the catalog's titles.

It exists so every code path that needs a causal LM (scoring, constrained generation, LoRA
training, chat formatting) runs in seconds on a laptop and in CI, with no download. Its outputs are
meaningless; only their shapes, determinism and consistency matter.

Determinism: the tokenizer is trained with ``tokenizers``' byte-level BPE (whose merge order is
deterministic given the corpus) on the titles plus a fixed corpus of prompt words, and the weights
are drawn from a private ``torch.Generator`` seeded with ``seed``. The result is saved (safetensors
+ tokenizer files) under ``<cache>/models/tiny-random/<key>/`` where ``key`` hashes (titles, seed,
recipe version), so the next load with the same titles and seed is a plain checkpoint load.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from bench.io import atomic_dir
from bench.llm.digest import DIGEST_FILE, cached_digest, checkpoint_files
from bench.llm.smollm2 import models_dir

log = logging.getLogger(__name__)

#: Bump when the recipe below changes, so stale cached models are not reused.
RECIPE_VERSION = 1
VOCAB_SIZE = 1536
BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
#: Role headers as plain text (not special tokens), so formatting goes through the tokenizer.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "### {{ message['role'] }}\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}{% if add_generation_prompt %}### assistant\n{% endif %}"
)
#: Words that prompts in the task templates use, so prompts tokenise to realistic lengths.
_CORPUS = """
You are a helpful assistant that explains the recommendations of a recommender system.
The user has watched, rated, liked, bought or clicked the following items, most recent last.
Here is the history of the user. Which item will the recommender system suggest next?
Would the recommender recommend this item to the user? Answer yes or no. Answer with Yes or No.
Predict the next item. Recommend one item from the catalog. Rank the candidates below.
Explain why the system recommended the item to the user based on their history and preferences.
Title: Genre: Year: Rating: Candidates: Answer: Explanation: Item: History: User: Assistant:
system user assistant movie movies film films book books song songs product products item items
action adventure animation children comedy crime documentary drama fantasy horror musical mystery
romance science fiction thriller war western the a an of and or in on to for with by from is was
are were be been this that these those it its their his her he she they we you I not no yes Yes No
one two three four five six seven eight nine ten first second third last next previous top best
0 1 2 3 4 5 6 7 8 9 10 100 1990 1995 1996 1997 1998 1999 2000 ( ) , . : ; ! ? " ' - / # *
Because the user enjoyed similar items, the model ranks this one highly among the candidates.
The recommendation is consistent with the user's recent interest in the same genre and director.
People who watched these titles also watched this one, so the collaborative signal is strong.
The explanation should mention which items in the history influenced the recommendation most.
Given the sequence of interactions, estimate the probability that the item appears in the top ten.
Is the following statement true or false? The recommended item is popular with similar users.
Summarise the user's taste in one sentence, then list the items the system is likely to suggest.
Score each candidate from one to five according to how well it matches the user's preferences.
Remove one item from the history so that the recommendation changes; which item should it be?
Return only the title of the item, exactly as it is written in the catalog, with no extra words.
"""


def cache_key(titles: Sequence[str], seed: int) -> str:
    """Hash of everything the built model depends on: the titles (in order), seed, recipe."""
    h = hashlib.sha256()
    h.update(f"tiny-random v{RECIPE_VERSION} seed={seed}\n".encode())
    for title in titles:
        h.update(title.encode("utf-8") + b"\0")
    return h.hexdigest()[:16]


def tiny_dir(titles: Sequence[str], seed: int) -> Path:
    return models_dir() / "tiny-random" / cache_key(titles, seed)


def build_tokenizer(titles: Sequence[str]):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``titles`` + the fixed corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[BOS, EOS, PAD],
        # The full byte alphabet: any text (any title, any generated byte) stays encodable.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=1,
        show_progress=False,
    )
    corpus = [line for line in _CORPUS.splitlines() if line.strip()]
    tok.train_from_iterator([*corpus, *titles], trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
        model_max_length=2048,
    )


def build_model(tokenizer, seed: int):
    """A 2-layer random ``LlamaForCausalLM`` sized for ``tokenizer``, weights drawn from ``seed``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        # Larger than Llama's 0.02: peakier next-token distributions, so greedy decoding is not
        # decided by float noise between near-equal logits (which would make tests flaky).
        initializer_range=0.2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval()


def ensure_tiny(titles: Sequence[str] | None = None, *, seed: int = 0) -> tuple[Path, dict]:
    """The directory of the tiny-random checkpoint for (titles, seed), building it if needed.

    Returns ``(directory, meta)``; meta holds ``key``, ``n_titles``, ``seed``, ``n_params`` and
    ``sha256`` (the checkpoint digest).
    """
    titles = list(titles or [])
    out = tiny_dir(titles, seed)
    marker = out / "TINY.json"
    if marker.is_file():
        log.info("reusing tiny-random (%d titles, seed %d) in %s", len(titles), seed, out)
        return out, json.loads(marker.read_text(encoding="utf-8"))
    tokenizer = build_tokenizer(titles)
    model = build_model(tokenizer, seed)
    with atomic_dir(out) as staging:  # another process may finish first: then its copy is kept
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        meta = {
            "key": out.name,
            "n_titles": len(titles),
            "seed": seed,
            "n_params": sum(p.numel() for p in model.parameters()),
            "sha256": cached_digest(checkpoint_files(staging), staging / DIGEST_FILE),
        }
        (staging / marker.name).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    log.info("built tiny-random (%d titles, seed %d) in %s", len(titles), seed, out)
    return out, json.loads(marker.read_text(encoding="utf-8"))
