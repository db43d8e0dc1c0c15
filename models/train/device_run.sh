#!/usr/bin/env bash
# heed-small: everything that runs on the GPU machine, in one call, from the repository root.
#   BUDGET=160 bash models/train/device_run.sh            train for BUDGET seconds, convert, evaluate
#   RESUME=/tmp/heed/run/ckpt.pt BUDGET=160 bash ...      resume an interrupted run (same machine)
# Needs: CORPUS (prep_data.py output, default models/.corpus), GGUF_PY (gguf-py of the pinned llama.cpp,
# default models/.llama/gguf-py), TRAIN_DIR (these scripts, default models/train), models/tokenizer.json and
# models/heed-tiny.gguf (the peer). Results go to $OUT: results.tgz and heed-small.gguf.part-* (15 MiB
# pieces), the GGUF first so that a run stopped during evaluation still returns the model.
# The llama.cpp checks (tokenizer fixture, llama-perplexity) run on the development machine afterwards.
set -uo pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
R=$(pwd); T=$R/${TRAIN_DIR:-models/train}; C=$R/${CORPUS:-models/.corpus}; G=$R/${GGUF_PY:-models/.llama/gguf-py}
W=/tmp/heed; O=${OUT:-/tmp/heed_out}; BUDGET=${BUDGET:-160}; TOK=$R/models/tokenizer.json
mkdir -p $W/ev $O
t0=$(date +%s); ts() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
pack() { (cd $W && tar czf $O/results.tgz --ignore-failed-read $(ls -d *.log *.jsonl loss.png ev/*.json ev/*.txt 2>/dev/null | grep -v prompts)); }
ts "start: budget $BUDGET s; $(nproc) cpus; $(nvidia-smi --query-gpu=name --format=csv,noheader)"
python3 -c "import torch, tokenizers, sys; print('torch', torch.__version__, 'tokenizers', tokenizers.__version__, 'python', sys.version.split()[0])"

[ -z "${RESUME:-}" ] && rm -rf $W/run $W/*.log $W/metrics.jsonl $W/ev/*
ts "training"
python3 $T/train.py --tok $TOK --data $C --arr $W/arr --out $W/run --time-budget $BUDGET --compile \
  ${RESUME:+--resume $RESUME} --log $W/train.log --metrics $W/metrics.jsonl 2>&1 | grep -v Warning
[ -f $W/run/final.pt ] || { ts "no final checkpoint"; pack; exit 1; }
python3 $T/plot.py $W/metrics.jsonl $W/loss.png

ts "convert to GGUF"
PYTHONPATH=$G python3 $T/convert.py $W/run/final.pt $TOK $W/heed-small.gguf --name heed-small || { pack; exit 1; }
sha256sum $W/heed-small.gguf | tee $W/gguf.sha256.log
(cd $O && split -b 15M -d $W/heed-small.gguf heed-small.gguf.part-)
pack

ts "held-out wording and prose: heed-small and heed-tiny on the same prompts"
PYTHONPATH=$G python3 $T/eval_generalise.py $TOK $C/corpus_heldout.jsonl.xz $W/ev/eval_generalise.json \
  heed-small=$W/heed-small.gguf heed-tiny=$R/models/heed-tiny.gguf 2>&1 | tee $W/eval_generalise.log
pack
ts "pytorch eval: perplexity, passkey grid, logits and fixture ids for the llama.cpp checks"
(cd $T && python3 eval.py pytorch $W/run/final.pt $TOK $W/arr $C $W/ev) > $W/eval_pytorch.log 2>&1
tail -c 1500 $W/eval_pytorch.log
pack
ts "trained-format figures (heed-tiny's eval_retrieval.py)"
PYTHONPATH=$G python3 $T/eval_retrieval.py $W/heed-small.gguf $TOK $C/corpus_heldout.jsonl.xz $W/ev/eval_retrieval.json \
  > $W/eval_retrieval.log 2>&1
grep -A1 '"acc"' $W/eval_retrieval.log | grep acc | tr -d ' \n'; echo
pack
ls -l $O; ts "done"
