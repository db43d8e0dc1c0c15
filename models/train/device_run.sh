#!/usr/bin/env bash
# Heed-tiny: everything that runs on the GPU machine, from the repository root.
#   MODE=smoke BUDGET=60 bash models/train/device_run.sh    tokenizer + short run + every check
#   MODE=full  BUDGET=420 bash models/train/device_run.sh   full run (+ resume: RESUME=path/ckpt.pt)
# Needs (carried, git-ignored): models/.corpus (prep_data.py output), models/.llama (pinned llama.cpp
# source subset incl. gguf-py). Results go to $OUT: results.tgz, heed-tiny.gguf.part-* (15 MiB pieces).
set -uo pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
R=$(pwd); T=$R/models/train; W=/tmp/heed; O=${OUT:-/tmp/heed_out}
MODE=${MODE:-smoke}; BUDGET=${BUDGET:-60}
mkdir -p $W/ev $O
t0=$(date +%s); ts() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
pack() { (cd $W && tar czf $O/results.tgz --ignore-failed-read $(cd $W && ls -d tokenizer.json *.log *.jsonl loss.png ev/*.json ev/*.log ev/*.txt 2>/dev/null | grep -v -e prompts -e ppl.txt)); }
ts "start $MODE budget $BUDGET; $(nproc) cpus; $(nvidia-smi --query-gpu=name --format=csv,noheader)"
python3 -c "import torch, tokenizers, sys; print('torch', torch.__version__, 'tokenizers', tokenizers.__version__, 'python', sys.version.split()[0])"

# llama.cpp (pinned source subset) CPU build, in the background while the GPU trains
( cmake -S models/.llama -B /tmp/lb -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF -DGGML_CUDA=OFF -DGGML_NATIVE=ON \
    -DGGML_CCACHE=OFF > /dev/null \
  && cmake --build /tmp/lb -j6 --target llama-perplexity llama-tokenize \
  && g++ -O2 -std=c++17 $T/heed_llama.cpp -Imodels/.llama/include -Imodels/.llama/ggml/include -L/tmp/lb/bin \
       -lllama -lggml -lggml-base -Wl,-rpath,/tmp/lb/bin -o /tmp/lb/bin/heed_llama ) > $W/build.log 2>&1 &
BPID=$!

TOK=$R/models/tokenizer.json
if [ ! -f "$TOK" ]; then
  ts "training tokenizer"
  (cd $T && python3 train_tokenizer.py $R/models/.corpus/corpus_train.jsonl.xz $W/tokenizer.json) 2>&1 | tee $W/tokenizer.log || exit 1
  TOK=$W/tokenizer.json
fi

COMMON="--tok $TOK --data $R/models/.corpus --arr $W/arr"
[ -z "${RESUME:-}" ] && rm -rf $W/run $W/train.log $W/metrics.jsonl $W/eager* $W/ev/*   # fresh run on a warm machine
if [ "$MODE" = smoke ]; then
  ts "eager smoke run"
  python3 $T/train.py $COMMON --out $W/eager --time-budget 20 --log $W/eager.log --metrics $W/eager.jsonl 2>&1 | grep -v Warning
fi
ts "training ($MODE, compile=${COMPILE:-1})"
python3 $T/train.py $COMMON --out $W/run --time-budget $BUDGET ${RESUME:+--resume $RESUME} \
   $([ "${COMPILE:-1}" = 1 ] && echo --compile) --log $W/train.log --metrics $W/metrics.jsonl 2>&1 | grep -v Warning
python3 $T/plot.py $W/metrics.jsonl $W/loss.png
pack

ts "pytorch eval"
(cd $T && python3 eval.py pytorch $W/run/final.pt $TOK $W/arr $R/models/.corpus $W/ev) > $W/eval_pytorch.log 2>&1
tail -c 3000 $W/eval_pytorch.log
ts "convert to GGUF"
PYTHONPATH=$R/models/.llama/gguf-py python3 $T/convert.py $W/run/final.pt $TOK $W/heed-tiny.gguf || exit 1
ls -l $W/heed-tiny.gguf; sha256sum $W/heed-tiny.gguf | tee $W/gguf.sha256.log
pack
if [ "$MODE" = full ]; then
  (cd $O && split -b 15M -d $W/heed-tiny.gguf heed-tiny.gguf.part-)
fi

ts "waiting for llama.cpp build"
wait $BPID; echo "build rc=$?"; tail -3 $W/build.log
B=/tmp/lb/bin
ts "llama.cpp checks"
$B/heed_llama tokenize $W/heed-tiny.gguf models/fixtures/heldout.txt $W/ev/heldout.llama.tokens.json 2>> $W/ev/llama_tools.log
$B/heed_llama logits $W/heed-tiny.gguf $W/ev/logits_ids.txt $W/ev/logits_llama.bin 2>> $W/ev/llama_tools.log
$B/llama-perplexity -m $W/heed-tiny.gguf -f $W/ev/ppl.txt -c 2048 -b 2048 --chunks ${HEED_PPL_CHUNKS:-40} \
   --no-escape -t 16 > $W/ev/perplexity.log 2>&1
grep -E "Final estimate|chunks" $W/ev/perplexity.log | tail -2
ts "llama.cpp greedy passkey"
python3 -c "
import sys; p=open('$W/ev/passkey_prompts.txt',encoding='utf-8').read().split('\x1e'); n=int('${LLAMA_GREEDY_N:-100000}')
open('$W/ev/prompts_sub.txt','w',encoding='utf-8').write('\x1e'.join(p[:n])); print(len(p[:n]),'prompts')"
$B/heed_llama greedy $W/heed-tiny.gguf $W/ev/prompts_sub.txt $W/ev/passkey_gens_llama.txt 8 2>> $W/ev/llama_tools.log
python3 $T/eval.py llama $W/ev 2>&1 | tee $W/eval_llama.log
pack
ls -l $O; ts "done"
