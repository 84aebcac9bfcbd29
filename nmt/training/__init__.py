"""Training: `nmt train` from a data directory to checkpoints.

loop          the epochs and the stopping rules (knows nothing of generation or plotting)
trainer       one optimizer update in every setting (CPU/CUDA, DDP, fp32/bf16/fp16)
validation    loss, BLEU and the attention image at each validation; best, patience and plateau
checkpointing where a run resumes from, what it saves under which names, pruning
criterion     losses as sums (label-smoothed cross-entropy, with a blockwise form)
optim         optimizers and learning-rate schedules
ema           the exponential moving average of the weights
dist          the only module touching torch.distributed
logs          interval meters, log lines, TensorBoard
control       stop signals and the save-dir lock
"""
