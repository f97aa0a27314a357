"""The embedded default model: a tiny random-weight Llama directory that vLLM loads, built offline and reproducibly.

Nothing is downloaded: the BPE tokenizer is trained with `tokenizers` on generated text and the weights come from a
fixed torch seed. Two builds give byte-identical files, so a run's configuration hash means the same model.
"""
from __future__ import annotations

import json
from pathlib import Path

from mlperf_sut.dataset import PROMPT_TEMPLATE
from mlperf_sut.synthetic_text import TextGenerator

BOS_TOKEN = "<|begin_of_text|>"
EOS_TOKEN = "<|end_of_text|>"
VOCAB_SIZE = 2048
HIDDEN_SIZE = 256
NUM_LAYERS = 2
NUM_HEADS = 4
NUM_KV_HEADS = 2
INTERMEDIATE_SIZE = 512
MAX_POSITIONS = 4096
WEIGHT_SEED = 1234
TEXT_SEED = 4321


def build_tiny_model(output: Path) -> Path:
    """Write config.json, generation_config.json, tokenizer files and model.safetensors into `output`."""
    output.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer()
    tokenizer.save(str(output / "tokenizer.json"))
    vocab_size = tokenizer.get_vocab_size()
    bos_id, eos_id = tokenizer.token_to_id(BOS_TOKEN), tokenizer.token_to_id(EOS_TOKEN)
    _write_json(output / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": BOS_TOKEN, "eos_token": EOS_TOKEN,
        "model_max_length": MAX_POSITIONS, "clean_up_tokenization_spaces": False,
    })
    _write_json(output / "special_tokens_map.json", {"bos_token": BOS_TOKEN, "eos_token": EOS_TOKEN})
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab_size,
        "hidden_size": HIDDEN_SIZE, "intermediate_size": INTERMEDIATE_SIZE, "num_hidden_layers": NUM_LAYERS,
        "num_attention_heads": NUM_HEADS, "num_key_value_heads": NUM_KV_HEADS, "head_dim": HIDDEN_SIZE // NUM_HEADS,
        "max_position_embeddings": MAX_POSITIONS, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "hidden_act": "silu", "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "bos_token_id": bos_id, "eos_token_id": eos_id, "attention_bias": False, "mlp_bias": False,
    }
    _write_json(output / "config.json", config)
    _write_json(output / "generation_config.json", {"bos_token_id": bos_id, "eos_token_id": eos_id})
    _write_weights(output / "model.safetensors", config)
    return output


def _train_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=[BOS_TOKEN, EOS_TOKEN], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    generator = TextGenerator(TEXT_SEED)
    corpus = [PROMPT_TEMPLATE.format(input=generator.paragraph(8)) for _ in range(400)]
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    # Like Llama 3, encoding a prompt starts with the BOS token.
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A", special_tokens=[(BOS_TOKEN, tokenizer.token_to_id(BOS_TOKEN))])
    return tokenizer


def _write_weights(path: Path, config: dict) -> None:
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(WEIGHT_SEED)
    hidden, inter, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    shapes = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,),
              "lm_head.weight": (vocab, hidden)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes |= {p + "self_attn.q_proj.weight": (hidden, hidden), p + "self_attn.k_proj.weight": (kv, hidden),
                   p + "self_attn.v_proj.weight": (kv, hidden), p + "self_attn.o_proj.weight": (hidden, hidden),
                   p + "mlp.gate_proj.weight": (inter, hidden), p + "mlp.up_proj.weight": (inter, hidden),
                   p + "mlp.down_proj.weight": (hidden, inter), p + "input_layernorm.weight": (hidden,),
                   p + "post_attention_layernorm.weight": (hidden,)}
    tensors = {}
    for name in sorted(shapes):
        shape = shapes[name]
        if len(shape) == 1:
            tensors[name] = torch.ones(shape, dtype=torch.bfloat16)
        else:
            tensors[name] = (torch.randn(shape, generator=generator) * 0.02).to(torch.bfloat16)
    save_file(tensors, str(path), metadata={"format": "pt"})
    # safetensors writes 0600: a SUT image's non-root user (uid 10001) could not read weights a root build made
    path.chmod(0o644)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
