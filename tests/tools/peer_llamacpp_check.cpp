// CTest peer_llamacpp: bench/peer_llamacpp.py for real, through bench/peer.h, on SmolLM2's GGUF.
// Checks what the figures promise: tokens counted as documented (whole documents below the caps,
// 512 / 256 above them), the thread count honoured, sizes that add up, llama-zip's round trip exact
// (when LORAZIP_LLAMA_ZIP names its folder), and a failing document reported as an error.
// Exit 0 = every check held, 1 = one failed, 77 = skipped (no peer venv, or the model cannot be had).
#include <stdlib.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <sys/wait.h>

#include "bench/peer.h"

using namespace lorazip;
namespace fs = std::filesystem;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

bool positive(double x) { return std::isfinite(x) && x > 0; }

// Written for this check: plain English prose, a few hundred bytes.
const char* kProse =
    "The river rose slowly through the night, and by morning the lower fields were under water. "
    "Farmers moved their animals to the ridge, where the old stone barn still stood, and the children "
    "watched from the schoolhouse windows as boats drifted down the main street. Nobody in the valley "
    "remembered a flood like it, although the records in the town hall spoke of one a century before, "
    "when the bridge was swept away and the mill had to be rebuilt from its foundations.\n";

}  // namespace

int main() {
  // As scripts/test.sh sets it for libtorch: the script must still run THREADS threads.
  setenv("OMP_NUM_THREADS", "1", 1);
  std::string why;
  std::optional<std::string> python = find_peer_python(&why);
  if (!python) {
    std::printf("skipped: %s\n", why.c_str());
    return 77;
  }
  ProcessOutput fetched = run_process({"bash", std::string(LORAZIP_SOURCE_DIR) + "/scripts/fetch_smollm2.sh"});
  if (!WIFEXITED(fetched.status) || WEXITSTATUS(fetched.status) != 0) {
    std::printf("skipped: could not fetch SmolLM2 (offline?): %s\n", fetched.err.c_str());
    return 77;
  }
  std::string gguf = fetched.out.substr(0, fetched.out.find_last_not_of(" \n") + 1);

  std::string longer;
  for (int i = 0; i < 8; ++i) longer += kProse;  // about 750 tokens: above both caps
  PeerDocuments short_docs({kProse, "Hello."});
  PeerDocuments long_docs({longer});
  const char* llama_zip_dir = std::getenv("LORAZIP_LLAMA_ZIP");

  try {
    // Short documents, one thread, llama-zip too where it is: every token is counted once.
    PeerRequest r;
    r.python = *python;
    r.gguf = gguf;
    r.threads = 1;
    r.files = short_docs.paths();
    if (llama_zip_dir) r.llama_zip_dir = llama_zip_dir;
    PeerFigures a = run_peer_llamacpp(r);
    std::printf("%s\n", a.json.c_str());
    int64_t bytes = static_cast<int64_t>(std::string(kProse).size() + 6);
    check(a.threads == 1 && a.files == 2 && a.bytes == bytes, "threads, files and bytes echoed");
    check(a.doc_tokens > 2 && a.doc_tokens < a.tg_max, "the short documents are below both caps");
    check(a.pp_tokens == a.doc_tokens && a.tg_tokens == a.doc_tokens, "below the caps, pp and tg count every token once");
    check(positive(a.load_s) && positive(a.pp_tok_s) && positive(a.tg_tok_s), "load time and throughputs positive");
    check(positive(a.peak_rss_llamacpp_mib) && a.peak_rss_mib >= a.peak_rss_llamacpp_mib, "peak RSS positive and monotonic");
    check(a.system_info.find("AMX") == std::string::npos, "the build has no AMX (scripts/peer_venv.sh)");
    if (llama_zip_dir) {
      check(a.llama_zip.has_value(), "llama-zip ran");
      if (a.llama_zip) {
        const LlamaZipFigures& z = *a.llama_zip;
        check(z.round_trip_exact, "llama-zip round trip exact");
        check(z.threads == 1, "llama-zip's model took the thread count");
        check(z.bytes_in == bytes && z.bytes_out > 0 && z.bytes_out < z.bytes_in, "llama-zip sizes add up and it compresses");
        check(z.compress_s >= z.load_s && z.decompress_s >= z.load_s, "llama-zip totals include the load");
      }
    } else {
      check(!a.llama_zip.has_value(), "llama-zip not run without a folder (set LORAZIP_LLAMA_ZIP to run it)");
    }

    // A long document, two threads, best of two passes: the caps hold.
    r.threads = 2;
    r.repeat = 2;
    r.files = long_docs.paths();
    r.llama_zip_dir.clear();
    PeerFigures b = run_peer_llamacpp(r);
    std::printf("%s\n", b.json.c_str());
    check(b.threads == 2 && b.repeat == 2, "two threads and two passes echoed");
    check(b.omp_num_threads_inherited == "1", "the inherited OMP_NUM_THREADS=1 reported (the script overrides it)");
    check(b.doc_tokens > b.pp_max, "the long document is above the pp cap");
    check(b.pp_tokens == b.pp_max && b.tg_tokens == b.tg_max, "pp counts 512 tokens and tg 256 of a long document");

    // A document that cannot be read: an error naming it.
    r.files = {(fs::path(long_docs.paths()[0]).parent_path() / "missing.txt").string()};
    try {
      run_peer_llamacpp(r);
      check(false, "a missing document is an error");
    } catch (const std::runtime_error& e) {
      std::string msg = e.what();
      check(msg.find("missing.txt: cannot read the document") != std::string::npos, "a missing document is an error naming it");
    }
  } catch (const std::exception& e) {
    std::printf("FAIL %s\n", e.what());
    ++failures;
  }
  return failures == 0 ? 0 : 1;
}
