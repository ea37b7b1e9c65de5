// The HDF5 token store: writer (used by prepare) and reader (train / eval). The layout is in
// token_store.h and docs/token-store.md; h5py reads it with no lorazip code.
#include "data/token_store.h"

#include <H5Cpp.h>

#include <algorithm>
#include <stdexcept>

#include "model/tokenizer.h"

namespace lorazip {
namespace {

constexpr const char* kFormat = "lorazip-token-store";
constexpr int64_t kVersion = 1;
// Datasets at least this long are chunked and compressed; shorter ones stay contiguous (a chunk
// may not exceed a fixed-size dataset's extent, and compressing a few bytes gains nothing).
constexpr hsize_t kCompressMin = 4096;
constexpr hsize_t kChunk = 1 << 16;

void quiet_hdf5() {
  static bool once = [] {
    H5::Exception::dontPrint();
    return true;
  }();
  (void)once;
}

std::string h5_message(const H5::Exception& e) {
  std::string s = e.getDetailMsg();
  return s.empty() ? std::string("HDF5 error") : s;
}

H5::StrType utf8_vlen() {
  H5::StrType t(H5::PredType::C_S1, H5T_VARIABLE);
  t.setCset(H5T_CSET_UTF8);
  return t;
}

void write_attr(H5::H5Object& obj, const char* name, const std::string& v) {
  H5::StrType t = utf8_vlen();
  obj.createAttribute(name, t, H5::DataSpace(H5S_SCALAR)).write(t, v);
}

void write_attr(H5::H5Object& obj, const char* name, int64_t v) {
  obj.createAttribute(name, H5::PredType::STD_I64LE, H5::DataSpace(H5S_SCALAR)).write(H5::PredType::NATIVE_INT64, &v);
}

void write_attr(H5::H5Object& obj, const char* name, uint64_t v) {
  obj.createAttribute(name, H5::PredType::STD_U64LE, H5::DataSpace(H5S_SCALAR)).write(H5::PredType::NATIVE_UINT64, &v);
}

void write_attr(H5::H5Object& obj, const char* name, double v) {
  obj.createAttribute(name, H5::PredType::IEEE_F64LE, H5::DataSpace(H5S_SCALAR)).write(H5::PredType::NATIVE_DOUBLE, &v);
}

void write_attr(H5::H5Object& obj, const char* name, const std::vector<std::string>& v) {
  H5::StrType t = utf8_vlen();
  hsize_t n = v.size();
  std::vector<const char*> ptrs;
  for (const auto& s : v) ptrs.push_back(s.c_str());
  H5::Attribute a = obj.createAttribute(name, t, n ? H5::DataSpace(1, &n) : H5::DataSpace(H5S_NULL));
  if (n) a.write(t, ptrs.data());
}

std::string read_str_attr(const H5::H5Object& obj, const char* name) {
  H5::Attribute a = obj.openAttribute(name);
  if (a.getTypeClass() != H5T_STRING) throw std::runtime_error(std::string("attribute '") + name + "' is not a string");
  std::string s;
  a.read(a.getStrType(), s);
  return s;
}

int64_t read_int_attr(const H5::H5Object& obj, const char* name) {
  H5::Attribute a = obj.openAttribute(name);
  if (a.getTypeClass() != H5T_INTEGER) throw std::runtime_error(std::string("attribute '") + name + "' is not an integer");
  int64_t v = 0;
  a.read(H5::PredType::NATIVE_INT64, &v);
  return v;
}

std::vector<std::string> read_str_list_attr(const H5::H5Object& obj, const char* name) {
  H5::Attribute a = obj.openAttribute(name);
  H5::DataSpace sp = a.getSpace();
  if (sp.getSimpleExtentType() == H5S_NULL) return {};
  if (a.getTypeClass() != H5T_STRING || sp.getSimpleExtentNdims() != 1)
    throw std::runtime_error(std::string("attribute '") + name + "' is not a list of strings");
  hsize_t n = 0;
  sp.getSimpleExtentDims(&n);
  H5::StrType t = utf8_vlen();
  if (!a.getStrType().isVariableStr()) {  // a fixed-length list (another writer): read as one block
    size_t w = a.getStrType().getSize();
    std::vector<char> buf(w * n);
    a.read(a.getStrType(), buf.data());
    std::vector<std::string> out;
    for (hsize_t i = 0; i < n; ++i) {
      std::string s(buf.data() + i * w, w);
      out.push_back(s.substr(0, s.find('\0')));
    }
    return out;
  }
  std::vector<char*> ptrs(n, nullptr);
  a.read(t, ptrs.data());
  std::vector<std::string> out;
  for (char* p : ptrs) out.emplace_back(p ? p : "");
  H5Dvlen_reclaim(t.getId(), sp.getId(), H5P_DEFAULT, ptrs.data());
  return out;
}

template <class T>
void write_dataset(H5::Group& g, const char* name, const H5::PredType& file_type, const H5::PredType& mem_type,
                   const std::vector<T>& data) {
  hsize_t n = data.size();
  H5::DataSpace sp(1, &n);
  H5::DSetCreatPropList pl;
  H5Pset_obj_track_times(pl.getId(), 0);  // no timestamps: the same input gives the same file bytes
  if (n >= kCompressMin) {
    hsize_t chunk = std::min(n, kChunk);
    pl.setChunk(1, &chunk);
    pl.setShuffle();
    pl.setDeflate(4);
  }
  H5::DataSet ds = g.createDataSet(name, file_type, sp, pl);
  if (n) ds.write(data.data(), mem_type);
}

template <class T>
void write_tokens_as(H5::Group& g, const H5::PredType& file_type, const H5::PredType& mem_type,
                     const std::vector<int32_t>& tokens) {
  std::vector<T> narrow(tokens.begin(), tokens.end());
  write_dataset(g, "tokens", file_type, mem_type, narrow);
}

std::vector<uint64_t> read_u64_dataset(const H5::Group& g, const char* name) {
  H5::DataSet ds = g.openDataSet(name);
  H5::DataSpace sp = ds.getSpace();
  if (sp.getSimpleExtentNdims() != 1) throw std::runtime_error(std::string("dataset '") + name + "' is not 1-D");
  hsize_t n = 0;
  sp.getSimpleExtentDims(&n);
  std::vector<uint64_t> v(n);
  if (n) ds.read(v.data(), H5::PredType::NATIVE_UINT64);
  return v;
}

}  // namespace

void DocSet::set_contexts(const std::vector<std::vector<int32_t>>& contexts) {
  if (contexts.size() != num_docs())
    throw std::invalid_argument("DocSet::set_contexts: " + std::to_string(contexts.size()) + " contexts for " + std::to_string(num_docs()) + " documents");
  context_tokens.clear();
  context_offsets.assign(1, 0);
  for (const auto& c : contexts) {
    context_tokens.insert(context_tokens.end(), c.begin(), c.end());
    context_offsets.push_back(context_tokens.size());
  }
}

uint64_t DocSet::total_bytes() const {
  uint64_t s = 0;
  for (uint64_t b : byte_lengths) s += b;
  return s;
}

std::string token_dtype_for_vocab(int64_t vocab_size) {
  if (vocab_size <= 0) throw std::invalid_argument("vocab_size must be positive, got " + std::to_string(vocab_size));
  if (vocab_size <= 256) return "uint8";
  if (vocab_size <= 65536) return "uint16";
  if (vocab_size <= (int64_t(1) << 32)) return "uint32";
  throw std::invalid_argument("vocab_size " + std::to_string(vocab_size) + " does not fit uint32 token ids");
}

void write_token_store(const std::string& path, const StoreHeader& header, const std::vector<StoreDomain>& domains) {
  std::string dtype = token_dtype_for_vocab(header.vocab_size);
  for (const auto& d : domains) {
    for (int s = 0; s < 3; ++s) {
      const DocSet& set = d.splits[s];
      std::string where = "token store '" + path + "': /" + d.name + "/" + kSplitNames[s];
      if (set.offsets.size() != set.byte_lengths.size() + 1 || set.offsets.front() != 0 ||
          set.offsets.back() != set.tokens.size() || !std::is_sorted(set.offsets.begin(), set.offsets.end()))
        throw std::invalid_argument(where + ": offsets do not describe the token array");
      for (int32_t t : set.tokens)
        if (t < 0 || t >= header.vocab_size)
          throw std::invalid_argument(where + ": token id " + std::to_string(t) + " outside [0, " +
                                      std::to_string(header.vocab_size) + ")");
    }
  }
  quiet_hdf5();
  try {
    // The 1.8 file format: readable by every HDF5 from 1.8 on (h5py included), and it stores
    // attributes over 64 KiB (a long source list) densely instead of failing.
    H5::FileAccPropList fapl;
    H5Pset_libver_bounds(fapl.getId(), H5F_LIBVER_V18, H5F_LIBVER_V18);
    H5::H5File file(path, H5F_ACC_TRUNC, H5::FileCreatPropList::DEFAULT, fapl);
    H5::Group root = file.openGroup("/");
    write_attr(root, "format", std::string(kFormat));
    write_attr(root, "version", kVersion);
    write_attr(root, "tokenizer_sha256", header.tokenizer_sha256);
    write_attr(root, "vocab_size", header.vocab_size);
    write_attr(root, "token_dtype", dtype);
    write_attr(root, "seed", header.seed);
    write_attr(root, "val_fraction", header.val_fraction);
    write_attr(root, "test_fraction", header.test_fraction);
    write_attr(root, "tokenizer_source", header.tokenizer_source);
    write_attr(root, "stats_json", header.stats_json);
    std::vector<std::string> names;
    for (const auto& d : domains) names.push_back(d.name);
    write_attr(root, "domains", names);

    for (const auto& d : domains) {
      H5::Group dg = file.createGroup("/" + d.name);
      int64_t docs = 0;
      for (const auto& s : d.splits) docs += static_cast<int64_t>(s.num_docs());
      write_attr(dg, "sources", d.sources);
      write_attr(dg, "documents", docs);
      write_attr(dg, "documents_read", d.documents_read);
      write_attr(dg, "duplicates_dropped", d.duplicates_dropped);
      write_attr(dg, "skipped", d.skipped);
      for (int s = 0; s < 3; ++s) {
        const DocSet& set = d.splits[s];
        H5::Group sg = dg.createGroup(kSplitNames[s]);
        write_attr(sg, "documents", static_cast<int64_t>(set.num_docs()));
        write_attr(sg, "bytes", static_cast<int64_t>(set.total_bytes()));
        write_attr(sg, "tokens", static_cast<int64_t>(set.tokens.size()));
        if (dtype == "uint8") write_tokens_as<uint8_t>(sg, H5::PredType::STD_U8LE, H5::PredType::NATIVE_UINT8, set.tokens);
        else if (dtype == "uint16") write_tokens_as<uint16_t>(sg, H5::PredType::STD_U16LE, H5::PredType::NATIVE_UINT16, set.tokens);
        else write_tokens_as<uint32_t>(sg, H5::PredType::STD_U32LE, H5::PredType::NATIVE_UINT32, set.tokens);
        write_dataset(sg, "offsets", H5::PredType::STD_U64LE, H5::PredType::NATIVE_UINT64, set.offsets);
        write_dataset(sg, "byte_lengths", H5::PredType::STD_U64LE, H5::PredType::NATIVE_UINT64, set.byte_lengths);
      }
    }
    file.close();
  } catch (const H5::Exception& e) {
    throw std::runtime_error("cannot write token store '" + path + "': " + h5_message(e) + " (disk full or not writable?)");
  }
}

// ---- reader ----

struct TokenStore::Impl {
  std::string path;
  H5::H5File file;
  std::string tokenizer_sha256;
  int64_t vocab_size = 0;
  std::string token_dtype;
  std::vector<std::string> domains;
};

TokenStore::TokenStore() : impl_(std::make_unique<Impl>()) {}
TokenStore::TokenStore(TokenStore&&) noexcept = default;
TokenStore& TokenStore::operator=(TokenStore&&) noexcept = default;
TokenStore::~TokenStore() = default;

TokenStore TokenStore::open(const std::string& path) {
  quiet_hdf5();
  TokenStore ts;
  Impl& m = *ts.impl_;
  m.path = path;
  const std::string hint = " (write one with `lorazip prepare`)";
  {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw std::runtime_error("cannot open token store '" + path + "': no such file" + hint);
    std::fclose(f);
  }
  try {
    if (!H5::H5File::isHdf5(path)) throw std::runtime_error("'" + path + "' is not an HDF5 file" + hint);
    m.file.openFile(path, H5F_ACC_RDONLY);
  } catch (const H5::Exception& e) {
    throw std::runtime_error("cannot open token store '" + path + "': " + h5_message(e));
  }
  try {
    H5::Group root = m.file.openGroup("/");
    if (!root.attrExists("format") || read_str_attr(root, "format") != kFormat)
      throw std::runtime_error("'" + path + "' is an HDF5 file but not a lorazip token store (no format=\"" +
                               std::string(kFormat) + "\" attribute)" + hint);
    int64_t version = read_int_attr(root, "version");
    if (version != kVersion)
      throw std::runtime_error("token store '" + path + "' has version " + std::to_string(version) +
                               "; this lorazip reads version " + std::to_string(kVersion) + hint);
    m.tokenizer_sha256 = read_str_attr(root, "tokenizer_sha256");
    m.vocab_size = read_int_attr(root, "vocab_size");
    m.token_dtype = read_str_attr(root, "token_dtype");
    if (root.attrExists("domains")) {
      m.domains = read_str_list_attr(root, "domains");
    } else {
      for (hsize_t i = 0; i < root.getNumObjs(); ++i)
        if (root.getObjTypeByIdx(i) == H5G_GROUP) m.domains.push_back(root.getObjnameByIdx(i));
    }
  } catch (const H5::Exception& e) {
    throw std::runtime_error("token store '" + path + "' is damaged or incomplete: " + h5_message(e) + hint);
  }
  return ts;
}

std::vector<std::string> TokenStore::domains() const { return impl_->domains; }
const std::string& TokenStore::tokenizer_sha256() const { return impl_->tokenizer_sha256; }
int64_t TokenStore::vocab_size() const { return impl_->vocab_size; }
const std::string& TokenStore::path() const { return impl_->path; }
const std::string& TokenStore::token_dtype() const { return impl_->token_dtype; }

bool TokenStore::has(const std::string& domain, const std::string& split) const {
  if (domain.empty() || domain.find('/') != std::string::npos || split.find('/') != std::string::npos) return false;
  try {
    if (!impl_->file.nameExists("/" + domain)) return false;
    return impl_->file.nameExists("/" + domain + "/" + split);
  } catch (const H5::Exception&) {
    return false;
  }
}

DocSet TokenStore::read(const std::string& domain, const std::string& split) const {
  std::string group = "/" + domain + "/" + split;
  if (!has(domain, split)) {
    std::string have;
    for (const auto& d : impl_->domains) have += (have.empty() ? "" : ", ") + d;
    throw std::runtime_error("token store '" + impl_->path + "' has no group '" + group + "' (domains: " + have +
                             "; splits: train, val, test)");
  }
  DocSet set;
  try {
    H5::Group g = impl_->file.openGroup(group);
    H5::DataSet ds = g.openDataSet("tokens");
    H5::DataSpace sp = ds.getSpace();
    if (sp.getSimpleExtentNdims() != 1) throw std::runtime_error("'tokens' is not 1-D");
    hsize_t n = 0;
    sp.getSimpleExtentDims(&n);
    set.tokens.resize(n);
    if (n) ds.read(set.tokens.data(), H5::PredType::NATIVE_INT32);
    set.offsets = read_u64_dataset(g, "offsets");
    set.byte_lengths = read_u64_dataset(g, "byte_lengths");
  } catch (const H5::Exception& e) {
    throw std::runtime_error("token store '" + impl_->path + "': cannot read " + group + ": " + h5_message(e));
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("token store '" + impl_->path + "': " + group + ": " + e.what());
  }
  bool ok = set.offsets.size() == set.byte_lengths.size() + 1 && set.offsets.front() == 0 &&
            set.offsets.back() == set.tokens.size() && std::is_sorted(set.offsets.begin(), set.offsets.end());
  if (!ok)
    throw std::runtime_error("token store '" + impl_->path + "': " + group +
                             ": offsets/byte_lengths do not match the token array (corrupt file?)");
  for (int32_t t : set.tokens)
    if (t < 0 || t >= impl_->vocab_size)
      throw std::runtime_error("token store '" + impl_->path + "': " + group + ": token id " + std::to_string(t) +
                               " outside the vocabulary of " + std::to_string(impl_->vocab_size));
  return set;
}

std::vector<std::string> TokenStore::sources(const std::string& domain) const {
  try {
    if (domain.empty() || domain.find('/') != std::string::npos || !impl_->file.nameExists("/" + domain))
      throw std::runtime_error("token store '" + impl_->path + "' has no domain '" + domain + "'");
    H5::Group g = impl_->file.openGroup("/" + domain);
    return g.attrExists("sources") ? read_str_list_attr(g, "sources") : std::vector<std::string>{};
  } catch (const H5::Exception& e) {
    throw std::runtime_error("token store '" + impl_->path + "': /" + domain + ": " + h5_message(e));
  }
}

std::string TokenStore::stats_json() const {
  try {
    H5::Group root = impl_->file.openGroup("/");
    return root.attrExists("stats_json") ? read_str_attr(root, "stats_json") : std::string();
  } catch (const H5::Exception& e) {
    throw std::runtime_error("token store '" + impl_->path + "': " + h5_message(e));
  }
}

void TokenStore::check_tokenizer(const Tokenizer& tok) const {
  if (tok.sha256() != impl_->tokenizer_sha256)
    throw std::runtime_error("token store '" + impl_->path + "' was written with tokenizer sha256 " +
                             impl_->tokenizer_sha256 + ", but the tokenizer given has sha256 " + tok.sha256() +
                             " (use the tokenizer.model that `lorazip prepare` used, or prepare again)");
  if (tok.vocab_size() != impl_->vocab_size)
    throw std::runtime_error("token store '" + impl_->path + "' has vocab_size " + std::to_string(impl_->vocab_size) +
                             " but the tokenizer has " + std::to_string(tok.vocab_size()));
}

std::vector<std::string> decode_documents(const DocSet& set, const Tokenizer& tok, size_t max_docs) {
  size_t n = set.num_docs();
  if (max_docs > 0) n = std::min(n, max_docs);
  std::vector<std::string> out;
  out.reserve(n);
  for (size_t d = 0; d < n; ++d) {
    out.push_back(tok.decode(set.doc(d), set.doc_len(d)));
    if (out.back().size() != set.byte_lengths[d])
      throw std::runtime_error("document " + std::to_string(d) + " decodes to " + std::to_string(out.back().size()) +
                               " bytes but the store records " + std::to_string(set.byte_lengths[d]) +
                               " (wrong tokenizer or corrupt store)");
  }
  return out;
}

std::vector<std::string> read_documents(const TokenStore& store, const Tokenizer& tok, const std::string& domain,
                                        const std::string& split, size_t max_docs) {
  store.check_tokenizer(tok);
  DocSet set = store.read(domain, split);
  try {
    return decode_documents(set, tok, max_docs);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("token store '" + store.path() + "': /" + domain + "/" + split + ": " + e.what());
  }
}

}  // namespace lorazip
