#!/usr/bin/env bash
# Started by start_runs.sh in its own process group; not run by hand.
#   [PACK=.gpu/train_pool_256.pack] train_chain.sh END_AT MP_MODE PCONV_FIT_ARGS...
# 1. With INIT_EXPECTED=1: waits (INIT_WAIT, 120 s) for the starting weights (collect.sh touches
#    outputs/init_arrived once .gpu_init is there, which may arrive after .gpu/) and adds
#    --model.init_weights; without them by then, trains from scratch and says so (a config that
#    names its own init_weights, reference_256_continued.yaml, stops on the missing file).
# 2. The training, its max_time set so that it (and the proof after it, MP_MODE=after) ends by
#    END_AT (epoch seconds): END_AT - now - STARTUP_S - EXIT_S [- MP_ALONE_S].
# 3. MP_MODE=after: benchmarks/mixed_precision.py, unless collect.sh asked to stop.
# 4. outputs/chain.done.
set -uo pipefail
END_AT=$1 MP_MODE=$2 PACK=${PACK:-.gpu/train_pool_256.pack}
shift 2
RUN=outputs/reference_256
log() { echo "$(date +%T) $*"; }
init=()
if [ -n "${INIT_EXPECTED:-}" ]; then
  log "waiting up to ${INIT_WAIT:-120} s for the starting weights (.gpu_init)"
  for _ in $(seq "${INIT_WAIT:-120}"); do
    [ -f outputs/init_arrived ] && break
    sleep 1
  done
  if [ -f outputs/init_arrived ]; then
    path=.gpu_init
    [ -f .gpu_init/pieces.json ] || path=$(ls .gpu_init/*.safetensors 2>/dev/null | head -n 1)
    init=(--model.init_weights "$path")
    log "init weights: $path ($(du -sh .gpu_init | cut -f1))"
  else
    log "WARNING: no reference weights after ${INIT_WAIT:-120} s: training from scratch" \
      "(a config naming --model.init_weights stops instead)"
  fi
fi
after=0
[ "$MP_MODE" = after ] && after=${MP_ALONE_S:-100}
max_time=$(( END_AT - $(date +%s) - ${STARTUP_S:-30} - ${EXIT_S:-15} - after ))
[ "$max_time" -ge 30 ] || max_time=30
# Lightning's Timer takes DD:HH:MM:SS with two-digit fields (00:00:00:109 is refused).
hms=$(printf '00:%02d:%02d:%02d' $((max_time / 3600)) $((max_time % 3600 / 60)) $((max_time % 60)))
log "training: max_time ${max_time} s ($hms)"
python3 -m pconv_lightning fit "$@" "${init[@]}" --trainer.max_time "$hms" \
  > $RUN/train.log 2>&1 < /dev/null &
echo $! > $RUN/train.pid
wait $!
echo $? > $RUN/train.rc
log "training exited $(cat $RUN/train.rc); $(tail -n 1 $RUN/train.log)"
if [ "$MP_MODE" = after ] && [ ! -f outputs/stop ]; then
  log "mixed-precision proof (after the training)"
  python3 benchmarks/mixed_precision.py --out outputs/mp --vgg .gpu/vgg16_pool3.pth \
    --pack "$PACK" --masks .gpu/masks_train ${TINY:+--tiny} \
    > outputs/mp/mp.log 2>&1 < /dev/null &
  echo $! > outputs/mp/mp.pid
  wait $!
  log "mixed-precision proof exited $?"
fi
touch outputs/chain.done
log "done"
