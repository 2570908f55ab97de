#!/usr/bin/env bash
# Device call 1, part 2: pick batch / lr / steps from the table, start the reference training
# and the mixed-precision proof in their own sessions (setsid: they outlive this call while
# the machine stays held), then watch for WATCH seconds. TINY=1: the same on the CPU, a few
# steps (tests/test_gpu_scripts.py runs bench.sh, start_runs.sh, collect.sh and fetch.sh so).
#   [BENCH=gpu_bench.json] [WATCH=60] bash scripts/gpu/start_runs.sh [TRAIN_SECONDS=960]
set -uo pipefail
source scripts/gpu/setup_device.sh || exit 1
TRAIN_SECONDS=${1:-960}
eval "$(python3 scripts/gpu/pick_config.py "${BENCH:-outputs/bench/gpu_bench.json}" --seconds "$TRAIN_SECONDS" ${TINY:+--size 32})"
echo "chosen: batch $BATCH lr $LR compile $COMPILE channels_last $CL max_steps $MAX_STEPS stage2 at $AT_STEP ($RATE img/s measured)"
mkdir -p outputs/reference_256 outputs/mp
setsid nohup python3 -m pconv_lightning fit --config experiments/configs/reference_256.yaml \
  --model.vgg_weights .gpu/vgg16_pool3.pth --data.batch_size "$BATCH" \
  --model.optimizer.init_args.lr "$LR" --model.compile "$COMPILE" --model.channels_last "$CL" \
  --trainer.max_steps "$MAX_STEPS" --stage2.at_step "$AT_STEP" \
  --trainer.max_time "00:00:00:$TRAIN_SECONDS" --trainer.enable_progress_bar false \
  ${TINY:+--trainer.accelerator=cpu --trainer.precision=32-true --data.image_size=64 \
    --data.num_workers=0 --model.net.init_args.layers=6 --model.vgg_weights=null --data.batch_size=2 \
    --trainer.max_steps=3 --stage2.at_step=2} \
  > outputs/reference_256/train.log 2>&1 < /dev/null &
echo $! > outputs/reference_256/train.pid
setsid nohup python3 benchmarks/mixed_precision.py --out outputs/mp --vgg .gpu/vgg16_pool3.pth \
  --pack .gpu/train_pool_256.pack --masks .gpu/masks_train --steps 2000 --compare 300 ${TINY:+--tiny} \
  > outputs/mp/mp.log 2>&1 < /dev/null &
echo "started training (pid $(cat outputs/reference_256/train.pid)) and the mixed-precision proof"
bash scripts/gpu/collect.sh "${WATCH:-60}"
