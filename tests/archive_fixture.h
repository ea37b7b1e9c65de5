// Archives of stored members built with the format's own pieces (codec/archive.h), for the tests
// of the archive format and of recovery that need no model.
#pragma once
#include <string>
#include <vector>

#include "codec/archive.h"
#include "codec/compact.h"

namespace lorazip {

inline ArchiveMember stored_member(const std::string& name, const std::string& doc) {
  ArchiveMember m;
  m.name = name;
  m.data_len = doc.size();
  m.original_bytes = doc.size();
  m.check = check32(doc);
  return m;
}

// A fresh archive (of `version`) of the documents as stored members "doc0", "doc1", ..., laid out
// as `create` writes it; *index_out (when given) gets its index.
inline std::string stored_archive(const std::vector<std::string>& docs, ArchiveIndex* index_out = nullptr, int version = kArchiveVersion) {
  ArchiveHeader h;
  h.version = version;
  h.arithmetic_version = 1;
  h.base_tag = 0x1234;
  h.tokenizer_tag = 0x56;
  std::string file = h.serialize();
  ArchiveIndex ix;
  for (size_t i = 0; i < docs.size(); ++i) {
    ix.members.push_back(stored_member("doc" + std::to_string(i), docs[i]));
    file += docs[i];
  }
  file += ix.serialize_with_footer(h);
  if (index_out) *index_out = ix;
  return file;
}

}  // namespace lorazip
