"""Translation: render a sentence of one language in another.

The Transformer is the model whose training made the warmup-then-inverse-square-root
schedule famous; this domain trains a small one and shows what the schedule does for it.
Data: `ted_hrlr_translate/pt_to_en` through TFDS, or local parallel text (a TranslateFolder
folder or tab-separated pairs; data.py). Model: a post-norm Transformer encoder-decoder
(model.py), decoded greedily (decoding.py). Loss and metrics (losses.py): token
cross-entropy and accuracy over real tokens; test BLEU with sacreBLEU (evaluate.py). A
search minimises validation loss. Extra command: `lrsuite translate --run DIR TEXT ...`.
"""

from common.domain import Command, Domain
from domains.translation import demo
from domains.translation.config import TranslationConfig
from domains.translation.data import load_data
from domains.translation.decoding import cmd_translate
from domains.translation.evaluate import evaluate_extra
from domains.translation.losses import loss, metrics
from domains.translation.model import build_model
from domains.translation.search_space import search_space


def describe_model(cfg: dict) -> str:
    return (f"Transformer, num_layers={cfg['num_layers']}, model_dim={cfg['model_dim']}, "
            f"num_heads={cfg['num_heads']}")


DOMAIN = Domain(
    name="translation",
    config_cls=TranslationConfig,
    load_data=load_data,
    build_model=build_model,
    loss=loss,
    metrics=metrics,
    objective="val_loss",
    direction="min",
    evaluate_extra=evaluate_extra,
    search_space=search_space,
    write_demo_data=demo.write_demo_data,
    demo_overrides=demo.OVERRIDES,
    describe_model=describe_model,
    commands=(Command("translate",
                      "--run DIR [--beam-size K] TEXT ... | --input FILE [--reference FILE]",
                      "translate sentences with a trained translation run", cmd_translate),),
)
