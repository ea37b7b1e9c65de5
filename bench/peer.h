// lorazip's peers on the same GGUF and documents: runs bench/peer_llamacpp.py (llama.cpp through
// PyPI's llama-cpp-python, and optionally llama-zip) in a child Python process and parses the one
// JSON object it prints. Torch-free, so any program (bench_codec, bench_peer) can put the peers'
// figures beside lorazip's. The script's header says what each figure includes.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lorazip {

// bench/peer_llamacpp.py in this source tree.
std::string default_peer_script();

// One run of PYTHON SCRIPT GGUF THREADS --repeat R [--llama-zip DIR] -- FILE...
struct PeerRequest {
  std::string python;              // a venv's interpreter (scripts/peer_venv.sh, find_peer_python());
                                   // a name without '/' is looked up in PATH
  std::string script = default_peer_script();
  std::string gguf;                // the model, as lorazip reads it
  int threads = 1;                 // llama.cpp threads for batches and single tokens alike, >= 1
  int repeat = 1;                  // pp and tg: the best of this many passes over every document, >= 1
  std::vector<std::string> files;  // the documents, each measured alone; at least one
  std::string llama_zip_dir;       // folder holding llama-zip's llama_zip.py; empty: llama-zip not run
};

// llama-zip over every file, one model load counted in each total (as one run of its program);
// one pass whatever the request's repeat.
struct LlamaZipFigures {
  int threads = 0;                 // read back from its model after loading
  int64_t n_ctx = 0;               // its context (its default: the model's training context)
  int64_t tokens = 0;              // symbols it codes: its tokens of each document + one EOS each
  double load_s = 0;               // model load, seconds
  double compress_s = 0;           // load_s + compressing every file, seconds
  double decompress_s = 0;         // load_s + decompressing every file, seconds
  int64_t bytes_in = 0;            // sum of the files' sizes
  int64_t bytes_out = 0;           // sum of the compressed sizes (llama-zip writes no header)
  bool round_trip_exact = false;   // every file decompressed to its bytes
};

// llama.cpp's figures on the documents (times: wall clock seconds; memory: MiB).
struct PeerFigures {
  std::string llama_cpp_python;    // package version
  std::string system_info;         // llama_print_system_info(): the ISAs the build uses
  std::string model;               // GGUF file name
  int threads = 0;
  int64_t files = 0;
  int64_t bytes = 0;               // sum of the files' sizes
  int64_t doc_tokens = 0;          // every document's whole token count, BOS included
  int64_t pp_max = 0;              // prompt processing: at most this many tokens of a document ...
  int64_t tg_max = 0;              // token generation: ... and at most this many
  int repeat = 0;                  // pp and tg are each the best of this many passes
  double load_s = 0;               // Llama(...) construction (the GGUF is mmapped)
  int64_t pp_tokens = 0;           // tokens evaluated one batch per document
  double pp_s = 0;
  double pp_tok_s = 0;
  int64_t tg_tokens = 0;           // tokens evaluated one at a time, KV cache kept
  double tg_s = 0;
  double tg_tok_s = 0;
  double peak_rss_llamacpp_mib = 0;  // process peak RSS after the llama.cpp figures
  double peak_rss_mib = 0;           // ... and at the end (llama-zip's model included)
  std::string omp_num_threads_inherited;  // OMP_NUM_THREADS the script found ("" unset); it sets
                                          // THREADS, as llama.cpp's OpenMP would obey a smaller one
  double loadavg_1m_start = 0;       // 1-minute load average before and after: noise from other work
  double loadavg_1m_end = 0;
  std::optional<LlamaZipFigures> llama_zip;  // empty when llama_zip_dir was
  std::string json;                // the script's object as it printed it (one line)
};

// Documents held in memory (e.g. sampled from JSONL) as files for the script: a private folder
// under $TMPDIR (else /tmp) holding doc-0.txt, doc-1.txt, ..., removed with its files by the
// destructor. std::runtime_error naming the path when a file cannot be written.
class PeerDocuments {
 public:
  explicit PeerDocuments(const std::vector<std::string>& texts);
  ~PeerDocuments();
  PeerDocuments(const PeerDocuments&) = delete;
  PeerDocuments& operator=(const PeerDocuments&) = delete;
  const std::vector<std::string>& paths() const { return paths_; }  // for PeerRequest::files

 private:
  std::string dir_;
  std::vector<std::string> paths_;
};

// Runs the script once (fork + exec, no shell, this process's environment) and parses its JSON.
// Throws std::invalid_argument for an incomplete request, and std::runtime_error naming the
// command and ending with the last lines of its stderr when it cannot start, exits non-zero, dies
// of a signal or prints no valid JSON object.
PeerFigures run_peer_llamacpp(const PeerRequest& request);

// The script's JSON object into figures; std::runtime_error naming a missing or mistyped field.
PeerFigures parse_peer_figures(const std::string& json_text);

// `bash scripts/peer_venv.sh` (never --make) from this source tree: the python of the venv at
// $LORAZIP_PEER_VENV, else ${LORAZIP_CACHE:-~/.cache/lorazip}/venv-llamacpp; or nothing when it
// exits 77 (no usable venv there), with its message in *why. Other failures throw.
std::optional<std::string> find_peer_python(std::string* why = nullptr);

// One row per run (e.g. threads 1 and 2): the 1-minute load average before-after, llama.cpp's
// load, pp, tg and peak memory, then llama-zip's load, compress, decompress, sizes, bits per byte
// and round trip where it ran.
std::string format_peer_table(const std::vector<PeerFigures>& runs);

// A finished child process: its wait() status and everything it wrote.
struct ProcessOutput {
  int status = 0;                  // as from waitpid (WIFEXITED / WEXITSTATUS / WTERMSIG)
  std::string out;
  std::string err;
};

// Runs argv (argv[0] a path, or a name looked up in PATH) with this process's environment and
// stdin, reading its stdout and stderr as they come (neither pipe can fill up and stall it).
// Throws std::runtime_error only when it cannot be started.
ProcessOutput run_process(const std::vector<std::string>& argv);

// "exited with status N" / "was killed by signal N (name)", for messages.
std::string describe_status(int status);

}  // namespace lorazip
