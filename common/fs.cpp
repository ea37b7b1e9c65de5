#include "common/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

namespace fs = std::filesystem;

namespace lorazip {
namespace {

std::string unique_suffix() {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  return ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++) + "." + std::to_string(rd() % 100000);
}

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void ensure_parent(const std::string& path) {
  fs::path p(path);
  if (p.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    if (ec) throw std::runtime_error("cannot create directory '" + p.parent_path().string() + "': " + ec.message());
  }
}

}  // namespace

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error("read error in '" + path + "'");
  return data;
}

void write_file_atomic(const std::string& path, std::string_view data) {
  AtomicPath out(path);
  {
    std::ofstream f(out.tmp(), std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("cannot create '" + out.tmp() + "': " + std::strerror(errno));
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    f.flush();
    if (!f) throw std::runtime_error("write error in '" + out.tmp() + "' (disk full?)");
  }
  out.commit();
}

AtomicPath::AtomicPath(std::string final_path) : final_(std::move(final_path)) {
  ensure_parent(final_);
  tmp_ = final_ + unique_suffix();
}

AtomicPath::~AtomicPath() {
  if (!done_) {
    std::error_code ec;
    fs::remove(tmp_, ec);
  }
}

void AtomicPath::commit() {
  fsync_path(tmp_);
  if (std::rename(tmp_.c_str(), final_.c_str()) != 0)
    throw std::runtime_error("cannot rename '" + tmp_ + "' to '" + final_ + "': " + std::strerror(errno));
  done_ = true;
  fs::path parent = fs::path(final_).parent_path();
  fsync_path(parent.empty() ? "." : parent.string());
}

AtomicDir::AtomicDir(std::string final_dir) : final_(std::move(final_dir)) {
  while (!final_.empty() && final_.back() == '/') final_.pop_back();
  ensure_parent(final_);
  tmp_ = final_ + unique_suffix();
  std::error_code ec;
  fs::create_directories(tmp_, ec);
  if (ec) throw std::runtime_error("cannot create directory '" + tmp_ + "': " + ec.message());
}

AtomicDir::~AtomicDir() {
  if (!done_) {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
}

void AtomicDir::commit() {
  for (auto& e : fs::directory_iterator(tmp_))
    if (e.is_regular_file()) fsync_path(e.path().string());
  std::error_code ec;
  std::string old;
  if (fs::exists(final_)) {
    old = final_ + unique_suffix() + ".old";
    fs::rename(final_, old, ec);
    if (ec) throw std::runtime_error("cannot move old '" + final_ + "' aside: " + ec.message());
  }
  fs::rename(tmp_, final_, ec);
  if (ec) {
    if (!old.empty()) fs::rename(old, final_);
    throw std::runtime_error("cannot rename '" + tmp_ + "' to '" + final_ + "': " + ec.message());
  }
  done_ = true;
  if (!old.empty()) fs::remove_all(old, ec);
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

std::string absolute_path(const std::string& path) {
  std::error_code ec;
  const fs::path a = fs::absolute(path, ec);
  if (ec) throw std::runtime_error("'" + path + "': cannot make an absolute path: " + ec.message());
  return a.lexically_normal().string();
}

bool dir_exists(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

}  // namespace lorazip
