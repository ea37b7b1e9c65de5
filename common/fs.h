// File helpers with lorazip's two habits: errors name the file, and nothing half-written is left
// where a good file is expected (write to a temporary sibling, fsync, rename).
#pragma once
#include <string>
#include <string_view>

namespace lorazip {

// Whole file into memory; std::runtime_error naming the path when it cannot be read.
std::string read_file(const std::string& path);

// Writes `data` to `path` atomically: a temporary file in the same directory, fsync, rename.
// Creates parent directories. On failure the temporary is removed and `path` is untouched.
void write_file_atomic(const std::string& path, std::string_view data);

// A temporary path beside `final_path` that is removed by the destructor unless commit() renamed it
// into place. Use for writers that need a real path (HDF5, SentencePiece's trainer).
class AtomicPath {
 public:
  explicit AtomicPath(std::string final_path);
  ~AtomicPath();
  AtomicPath(const AtomicPath&) = delete;
  AtomicPath& operator=(const AtomicPath&) = delete;
  const std::string& tmp() const { return tmp_; }
  const std::string& final_path() const { return final_; }
  void commit();  // fsync + rename(tmp, final)

 private:
  std::string final_;
  std::string tmp_;
  bool done_ = false;
};

// A temporary directory beside `final_dir`, renamed into place by commit() (replacing an existing
// directory of that name); removed with its contents otherwise.
class AtomicDir {
 public:
  explicit AtomicDir(std::string final_dir);
  ~AtomicDir();
  AtomicDir(const AtomicDir&) = delete;
  AtomicDir& operator=(const AtomicDir&) = delete;
  const std::string& tmp() const { return tmp_; }
  void commit();

 private:
  std::string final_;
  std::string tmp_;
  bool done_ = false;
};

bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);
// `path` made absolute against the current directory and normalised ("a/./b/../c" -> "/cwd/a/c").
std::string absolute_path(const std::string& path);

}  // namespace lorazip
