#!/usr/bin/env bash
# heed-small: everything that runs on the GPU machine, from the repository root.
#   BUDGET=600 STOP_AFTER=300 bash models/train/device_run.sh     train for at most STOP_AFTER s of a BUDGET-s run
#   RESUME=1 BUDGET=600 bash models/train/device_run.sh           go on from the checkpoint (same machine); the run
#                                                                 that reaches BUDGET converts and evaluates
#   TRAIN_ARGS="--p-synth 0.55" BUDGET=420 bash ...               more train.py options (run B of round 2)
# One call of the device tool lasts 10 minutes at most, so a run longer than that is spent over several calls;
# the learning-rate schedule follows the whole BUDGET. Each call writes $OUT/progress.log (how far it got).
# Needs: CORPUS (prep_data.py + prep_synonyms.py output, default models/.corpus), GGUF_PY (gguf-py of the
# pinned llama.cpp, default models/.llama/gguf-py), TRAIN_DIR (these scripts, default models/train),
# models/tokenizer.json. Peers for eval_generalise.py: whichever of models/heed-tiny.gguf and the previous
# models/heed-small.gguf travelled along (PEERS="name=path ..." overrides).
# Results go to $OUT: results.tgz and heed-small.gguf.part-* (15 MiB pieces), the GGUF first so that a run
# stopped during evaluation still returns the model. The llama.cpp checks (tokenizer fixture,
# llama-perplexity) run on the development machine afterwards.
set -uo pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
R=$(pwd); T=$R/${TRAIN_DIR:-models/train}; C=$R/${CORPUS:-models/.corpus}; G=$R/${GGUF_PY:-models/.llama/gguf-py}
W=/tmp/heed; O=${OUT:-/tmp/heed_out}; BUDGET=${BUDGET:-240}; TOK=$R/models/tokenizer.json
mkdir -p $W/ev $O
t0=$(date +%s); ts() { echo "[$(( $(date +%s) - t0 ))s] $*" | tee -a $O/progress.log; }
pack() { (cd $W && tar czf $O/results.tgz --ignore-failed-read $(ls -d *.log *.jsonl loss.png ev/*.json ev/*.txt 2>/dev/null | grep -v prompts)); }
ts "start: budget $BUDGET s, train.py options: ${TRAIN_ARGS:-none}, this call ${STOP_AFTER:-all of it}; $(nproc) cpus; $(nvidia-smi --query-gpu=name --format=csv,noheader)"
python3 -c "import torch, tokenizers, sys; print('torch', torch.__version__, 'tokenizers', tokenizers.__version__, 'python', sys.version.split()[0])"

[ -z "${RESUME:-}" ] && rm -rf $W/run $W/*.log $W/metrics.jsonl $W/ev/*
ts "training"
python3 $T/train.py --tok $TOK --data $C --arr $W/arr --out $W/run --time-budget $BUDGET --compile \
  --stop-after ${STOP_AFTER:-0} ${RESUME:+--resume $W/run/ckpt.pt} --log $W/train.log --metrics $W/metrics.jsonl \
  ${TRAIN_ARGS:-} 2>&1 | grep -v Warning | tail -25
grep -h "stopped after\|done:" $W/train.log | tail -1 | tee -a $O/progress.log
[ -f $W/run/final.pt ] || { ts "no final checkpoint yet: call again with RESUME=1"; pack; exit 0; }
python3 $T/plot.py $W/metrics.jsonl $W/loss.png

ts "convert to GGUF"
PYTHONPATH=$G python3 $T/convert.py $W/run/final.pt $TOK $W/heed-small.gguf --name heed-small || { pack; exit 1; }
sha256sum $W/heed-small.gguf | tee $W/gguf.sha256.log
(cd $O && split -b 15M -d $W/heed-small.gguf heed-small.gguf.part-)
pack

ts "held-out wording and prose: the new model and its peers on the same prompts"
PEERS=${PEERS:-$(for m in heed-tiny heed-small; do [ -f $R/models/$m.gguf ] && echo "$m-shipped=$R/models/$m.gguf"; done)}
PYTHONPATH=$G python3 $T/eval_generalise.py $TOK $C/corpus_heldout.jsonl.xz $W/ev/eval_generalise.json \
  heed-small=$W/heed-small.gguf $PEERS 2>&1 | tee $W/eval_generalise.log | tail -30
pack
ts "pytorch eval: perplexity, passkey grid, logits and fixture ids for the llama.cpp checks"
(cd $T && python3 eval.py pytorch $W/run/final.pt $TOK $W/arr $C $W/ev) > $W/eval_pytorch.log 2>&1
tail -c 1500 $W/eval_pytorch.log
pack
ls -l $O; ts "done"
