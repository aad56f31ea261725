"""Tiny random checkpoints (CLIP, SigLIP, X-CLIP) built in code and saved to a folder, loaded the
way users load models: the test fixtures and tests/hostile.py both make theirs here."""

from __future__ import annotations

from pathlib import Path


def _tokenizer():
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    import json, tempfile, os

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = 512
    vocab["<|endoftext|>"] = 513
    folder = tempfile.mkdtemp()
    vocab_file, merges_file = os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")
    Path(vocab_file).write_text(json.dumps(vocab))
    Path(merges_file).write_text("#version: 0.2\n")
    return CLIPTokenizer(vocab_file, merges_file)


TEXT = dict(vocab_size=514, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=77, bos_token_id=512, eos_token_id=513, pad_token_id=513)
VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=224, patch_size=32)


def make_clip(folder: Path) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=16)).eval()
    model.save_pretrained(folder)
    CLIPProcessor(CLIPImageProcessorPil(), _tokenizer()).save_pretrained(folder)
    return folder


def make_siglip(folder: Path) -> Path:
    import torch
    from transformers import SiglipConfig, SiglipModel, SiglipProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    torch.manual_seed(0)
    model = SiglipModel(SiglipConfig(text_config=TEXT, vision_config=VISION)).eval()
    model.save_pretrained(folder)
    SiglipProcessor(SiglipImageProcessorPil(), tokenizer=_tokenizer()).save_pretrained(folder)
    return folder


def make_xclip(folder: Path, num_frames: int = 8) -> Path:
    import torch
    from transformers import XCLIPConfig, XCLIPModel, XCLIPProcessor
    from transformers.models.videomae.image_processing_pil_videomae import VideoMAEImageProcessorPil

    torch.manual_seed(0)
    vision = dict(VISION, num_frames=num_frames, mit_hidden_size=16, mit_intermediate_size=64,
                  mit_num_hidden_layers=1, mit_num_attention_heads=2)
    config = XCLIPConfig(text_config=TEXT, vision_config=vision, projection_dim=16, prompt_layers=1,
                         prompt_attention_heads=2, prompt_num_attention_heads=2)
    XCLIPModel(config).eval().save_pretrained(folder)
    XCLIPProcessor(VideoMAEImageProcessorPil(), _tokenizer()).save_pretrained(folder)
    return folder
