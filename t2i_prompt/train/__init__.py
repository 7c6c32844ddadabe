"""Library side of rewriter training (scripts live in ``training/``).

* ``config``      -- ``SFTTrainConfig``/``DPOTrainConfig`` (trl config subclasses), ``PreferenceConfig``, ``LoopConfig``,
  ``parse_config`` (YAML then CLI overrides, unknown keys are an error).
* ``sft``/``dpo`` -- ``run_sft``, ``run_dpo`` (trl trainers, full or LoRA, checkpoints and safe resume).
* ``semdpo``      -- ``semdpo_weights``, ``semdpo_loss``, ``SemDPOTrainer`` (arXiv 2507.20133).
* ``preferences`` -- the preference data engine (sample -> render -> score -> pairs), cached and resumable.
* ``loop``        -- iterative rounds of preferences -> DPO.
"""
