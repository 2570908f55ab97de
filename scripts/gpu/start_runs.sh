#!/usr/bin/env bash
# On the GPU host, step 2 (seconds): choose batch / lr / compile / steps and where the
# mixed-precision proof runs from the benchmark table (pick_config.py), then start in their own
# process groups (setsid: they outlive this script) and return at once (the `pconv fit` command
# line is the one tests/test_gpu_scripts.py rehearses; an error in it shows in step 3's summary):
#   scripts/gpu/train_chain.sh: [waits for the starting weights in .gpu_init, when prepare.sh
#     staged some: .gpu/init.json] -> the training (reference_256.yaml, ending by WINDOW s
#     from now) -> [the mixed-precision proof, when it runs after] -> outputs/chain.done
#   benchmarks/mixed_precision.py, now, when the table shows room for it (MP_MODE=concurrent)
# TINY=1: the same on the CPU, a few steps (tests/test_gpu_scripts.py).
# WINDOW: seconds from now until the chain must be done; by default END_OFFSET (700) s after
# bench.sh started (outputs/budget_start).
# CONFIG: a config on top of reference_256.yaml (setup_device.sh), e.g.
# experiments/configs/reference_256_continued.yaml to continue the released model.
#   [BENCH=gpu_bench.json] [MP_MODE=auto|concurrent|after|skip] [INIT=none] [END_OFFSET=700] \
#     [CONFIG=...] bash scripts/gpu/start_runs.sh [WINDOW]
set -uo pipefail
source scripts/gpu/setup_device.sh || exit 1
budget_start=$(cat outputs/budget_start 2>/dev/null || date +%s)
WINDOW=${1:-$(( budget_start + ${END_OFFSET:-700} - $(date +%s) ))}
RUN=outputs/reference_256
mkdir -p $RUN outputs/mp
rm -f outputs/chain.done outputs/stop outputs/init_arrived
INIT_EXPECTED= INIT_DESC="none (from scratch)"
if [ -f .gpu/init.json ] && [ "${INIT:-}" != none ]; then
  INIT_EXPECTED=1 INIT_DESC="starting weights (.gpu_init)"
fi
export MP_ALONE_S=${MP_ALONE_S:-100} STARTUP_S=${STARTUP_S:-30} EXIT_S=${EXIT_S:-15}
picked=$(python3 scripts/gpu/pick_config.py "${BENCH:-outputs/bench/gpu_bench.json}" \
  --seconds "$WINDOW" ${INIT_EXPECTED:+--init} --mp-mode "${MP_MODE:-auto}" \
  --mp-alone-s "$MP_ALONE_S" --startup-s "$STARTUP_S" --exit-s "$EXIT_S" \
  ${TINY:+--size 32}) || exit 1
eval "$picked"
{
  echo "config: experiments/configs/reference_256.yaml${CONFIG:+ + $CONFIG}; pack: $PACK"
  echo "chosen: batch $BATCH lr $LR compile $COMPILE channels_last $CL rate $RATE img/s;" \
    "training ~${TRAIN_S} s, ~$EXPECTED_STEPS steps expected, max_steps $MAX_STEPS," \
    "stage 2 at step $AT_STEP or 80% of the time; init: $INIT_DESC"
  echo "mixed precision: $MP_MODE ($MP_REASON)"
} | tee $RUN/chosen.txt
cp $RUN/chosen.txt "$OUT"/
args=(--config experiments/configs/reference_256.yaml ${CONFIG:+--config "$CONFIG"}
  --model.vgg_weights .gpu/vgg16_pool3.pth
  --data.batch_size "$BATCH" --model.optimizer.init_args.lr "$LR" --model.compile "$COMPILE"
  --model.channels_last "$CL" --trainer.max_steps "$MAX_STEPS" --stage2.at_step "$AT_STEP"
  --trainer.enable_progress_bar false
  --trainer.callbacks+=timed_stage2.Stage2AtTimeFraction)
if [ -n "${TINY:-}" ]; then
  args+=(--trainer.accelerator=cpu --trainer.precision=32-true --data.image_size=64
    --data.num_workers=0 --model.net.init_args.layers=6 --model.vgg_weights=null
    --data.batch_size=2 --trainer.max_steps=3 --stage2.at_step=2
    --model.compile=false)  # inductor on the CPU takes minutes: the choice is still made above
fi
END_AT=$(( $(date +%s) + WINDOW ))
INIT_EXPECTED=$INIT_EXPECTED setsid nohup bash scripts/gpu/train_chain.sh "$END_AT" "$MP_MODE" \
  "${args[@]}" > $RUN/chain.log 2>&1 < /dev/null &
echo $! > $RUN/chain.pid
if [ "$MP_MODE" = concurrent ]; then
  setsid nohup python3 benchmarks/mixed_precision.py --out outputs/mp --vgg .gpu/vgg16_pool3.pth \
    --pack "$PACK" --masks .gpu/masks_train --workers 2 ${TINY:+--tiny} \
    > outputs/mp/mp.log 2>&1 < /dev/null &
  echo $! > outputs/mp/mp.pid
fi
sleep "${SETTLE_S:-3}"
echo "started the chain (pid $(cat $RUN/chain.pid)), ends by $(date -d @"$END_AT" +%T)" \
  "($WINDOW s); mixed precision: $MP_MODE"
tail -n 3 $RUN/chain.log
