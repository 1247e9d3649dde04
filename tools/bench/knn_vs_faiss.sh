#!/usr/bin/env bash
# Exact kNN on the cpu, ours (KnnCpu via `GpuAnomaly.Bench knn-cpu`) against FAISS IndexFlatL2, on the same .npy
# inputs, in one command:
#
#   bash tools/bench/knn_vs_faiss.sh
#
# Builds the bench (Release), writes the inputs (tools/bench/knn_faiss.py gen, under $DATA, default
# /tmp/knn_vs_faiss: 0.6 GB), then for threads 1 and 2 and each shape runs ours and FAISS in turn, $ROUNDS rounds
# (one process each, warm-up 0.5 s, median of $REPS searches), checks the results agree (distances rel. L2 <= 1e-5,
# indices equal but for near-ties) and prints the markdown table (median over the rounds; ratio = FAISS / ours, above
# 1 means ours is faster). Both sides run under the same `taskset` (cores 0..threads-1): DOTNET_PROCESSOR_COUNT alone
# does not keep .NET's Parallel.For on one core (the calling thread and a pool thread both work), taskset does.
# FAISS runs with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset, OMP_NUM_THREADS = threads and OPENBLAS_NUM_THREADS = 1,
# its fastest setting on this machine (the table's FAISS column); at 2 threads it also runs with
# OPENBLAS_NUM_THREADS = 2 (the last column: the pthread OpenBLAS's threads and OpenMP's contend for the 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."

data=${DATA:-/tmp/knn_vs_faiss}
rounds=${ROUNDS:-3}
reps=${REPS:-10}
py=${PYTHON:-/usr/bin/python3}
bench=bench/GpuAnomaly.Bench/bin/Release/net10.0/GpuAnomaly.Bench.dll
results=$data/results.txt

if ! "$py" -c "import faiss, numpy" 2>/dev/null; then
    echo "faiss missing: apt-get install -y python3-faiss python3-numpy libopenblas0-pthread" >&2
    exit 1
fi
dotnet build bench/GpuAnomaly.Bench -c Release 2>&1 | grep -E " error |warn" && exit 1
"$py" tools/bench/knn_faiss.py gen --out "$data"
so=$("$py" -c "import faiss._swigfaiss as s; print(s.__file__)")
echo "faiss links: $(ldd "$so" | grep -E 'blas|lapack|gomp' | awk '{print $1 " -> " $3}' | tr '\n' ' ')"
echo "libblas.so.3 is $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
: > "$results"

# name k
cases=("q784_n100000_d128 1" "q784_n100000_d128 9" "q1_n1000000_d128 10")
fail=0
for t in 1 2; do
    cores=$(seq -s, 0 $((t - 1)))
    for c in "${cases[@]}"; do
        read -r name k <<< "$c"
        qf=$data/$name.queries.npy bf=$data/$name.bank.npy
        for r in $(seq "$rounds"); do
            out=$data/$name.k$k.t$t
            taskset -c "$cores" env DOTNET_PROCESSOR_COUNT="$t" dotnet "$bench" knn-cpu --queries "$qf" --bank "$bf" \
                --k "$k" --reps "$reps" --out "$out.ours" | tee -a "$results" | grep RESULT
            for bt in $(printf '%s\n' 1 "$t" | sort -u); do
                taskset -c "$cores" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS="$bt" \
                    OMP_NUM_THREADS="$t" "$py" tools/bench/knn_faiss.py search --queries "$qf" --bank "$bf" --k "$k" \
                    --threads "$t" --reps "$reps" --out "$out.faiss" | tee -a "$results" | grep RESULT
            done
        done
        "$py" tools/bench/knn_faiss.py check --queries "$qf" --bank "$bf" --ours "$out.ours" --faiss "$out.faiss" \
            | tee -a "$results" || fail=1
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
grep -m1 "^knn cpu (faiss" "$results" | sed 's/^/faiss: /'
echo
"$py" tools/bench/knn_faiss.py table "$results"
exit $fail
