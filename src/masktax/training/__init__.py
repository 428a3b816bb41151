"""Training recipes, one sub-package each, on a shared loop.

    pretrain/      the embedded models from scratch: corpus, curriculum, batches, build, config, train,
                   pack, snapshot (`masktax pretrain`)
    finetune/      mask-agnostic fine-tuning [P1]: mask_agnostic_loss, ma_views, instruct_data,
                   synthetic_data, lora, config, train (`masktax finetune`)
    soft_masking/  soft-masking training [P2]: two_pass, config, train, evaluate (`masktax train-sm`)

Shared here: `mdlm_loss` (the MDLM / AR losses of pretraining and soft-masking), `loop` (checkpoints,
exact resume, metrics, schedule, `StepLoop`), `configio` (the JSON configs) and `suite_eval` (the
probe suite's accuracy while a model trains).
"""
