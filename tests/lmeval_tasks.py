"""Tiny local lm-eval tasks for tests/lmeval and tests/cli/test_eval.py: JSON data beside each task YAML
(nothing downloaded), one task per request type, over words the tiny tokenizer knows."""

from __future__ import annotations

import json
from pathlib import Path

LL_DOCS = [
    {"context": "Options : ( A ) cat , ( B ) run , ( C ) red\nAnswer : [", "target": "B"},
    {"context": "Options : ( A ) France , ( B ) jump , ( C ) lamp\nAnswer : [", "target": "A"},
    {"context": "Alice and Bob", "target": " run over the Garden"},
    {"context": "Options : ( A ) joy", "target": " anger"},
]
MC_DOCS = [
    {"question": "Alice likes", "choices": ["cat", "dog", "apple"], "label": 1},
    {"question": "Bob can", "choices": ["run", "jump", "knit"], "label": 0},
    {"question": "Carol is", "choices": ["happy", "quirky", "red"], "label": 2},
]
GEN_DOCS = [
    {"question": "Alice and Bob", "answer": "run"},
    {"question": "Options : ( A ) cat , ( B ) dog\nAnswer : [", "answer": "A"},
    {"question": "Carol", "answer": "knit"},
]
ROLL_DOCS = [
    {"text": "Alice and Bob run over the Garden . cat dog"},
    {"text": "France Japan Peru red blue joy anger"},
]

TASKS = {
    "tiny_ll": ("ll.jsonl", LL_DOCS, """output_type: loglikelihood
doc_to_text: "{{context}}"
doc_to_target: "{{target}}"
target_delimiter: ""
metric_list:
  - metric: acc
  - metric: perplexity
"""),
    "tiny_mc": ("mc.jsonl", MC_DOCS, """output_type: multiple_choice
doc_to_text: "{{question}}"
doc_to_choice: "{{choices}}"
doc_to_target: label
metric_list:
  - metric: acc
"""),
    "tiny_gen": ("gen.jsonl", GEN_DOCS, """output_type: generate_until
doc_to_text: "{{question}}"
doc_to_target: "{{answer}}"
generation_kwargs:
  until: ["."]
  max_gen_toks: 4
metric_list:
  - metric: exact_match
"""),
    "tiny_roll": ("roll.jsonl", ROLL_DOCS, """output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{text}}"
metric_list:
  - metric: word_perplexity
"""),
}


def write_tasks(root: Path) -> Path:
    """The tiny task YAMLs and their JSONL data under `root` (absolute data paths)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, (data, docs, body) in TASKS.items():
        (root / data).write_text("".join(json.dumps(d) + "\n" for d in docs))
        (root / f"{name}.yaml").write_text(
            f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {root / data}\n"
            f"test_split: test\n{body}metadata:\n  version: 1.0\n")
    return root
