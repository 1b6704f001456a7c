// pipesched: how a process of a multi-process run learns who it is and finds the others —
// without NCCL, MPI or CUDA headers, so that all of it is tested on the CPU.
//
//  - launch_from_environment(): rank, world size and local rank from the variables that
//    torchrun-style launchers (RANK, WORLD_SIZE, LOCAL_RANK), Open MPI's mpirun
//    (OMPI_COMM_WORLD_*) and Slurm's srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID) set;
//  - exchange_id_file(): rank 0 publishes a blob (NCCL's 128-byte unique id) in a shared
//    file, written atomically (a temporary file, then rename); the other ranks poll for it
//    until a deadline;
//  - file_failure_board: a folder where a failing rank leaves a note (its rank and what
//    failed), so that every other rank's exception can name it.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <unistd.h>

namespace pipesched::cuda {

/// The launch environment is missing, invalid or inconsistent, or a bootstrap file did not
/// appear in time. The message names the variable or the file.
struct launch_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Who this process is in a multi-process run.
struct launch_info {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;    ///< the index of this process on its node: its GPU
  char const* source = ""; ///< "torchrun", "Open MPI" or "Slurm": the variables it came from
};

namespace detail {

/// A non-negative decimal integer that fits an int, or a launch_error naming the variable.
inline int parse_count(char const* name, char const* text) {
  std::string const s = text;
  if (s.empty()) throw launch_error(std::string("pipesched: ") + name + " is set but empty");
  long long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      throw launch_error(std::string("pipesched: ") + name + "=\"" + s + "\" is not a non-negative integer");
    v = v * 10 + (c - '0');
    if (v > 0x7fffffff) throw launch_error(std::string("pipesched: ") + name + "=\"" + s + "\" is too large");
  }
  return static_cast<int>(v);
}

struct env_family {
  char const* source;
  char const* rank;
  char const* size;
  char const* local;
};

inline constexpr env_family env_families[] = {
    {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"},
    {"Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
    {"Slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
};

} // namespace detail

/// Rank, world size and local rank from launcher variables, read with `get(name)` (a
/// getenv-like function: null when unset). The first family whose rank or size variable is
/// set is used, in this order: torchrun (RANK, WORLD_SIZE, LOCAL_RANK — the most specific:
/// torchrun under srun sets them for its own children), Open MPI (OMPI_COMM_WORLD_RANK,
/// _SIZE, _LOCAL_RANK), Slurm (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID). Within that
/// family every variable must be set, a non-negative integer, rank and local rank below the
/// world size; otherwise launch_error names the variable. None set: launch_error listing
/// what was looked for.
template <class Get> launch_info launch_from_env(Get&& get) {
  for (detail::env_family const& f : detail::env_families) {
    char const* const r = get(f.rank);
    char const* const n = get(f.size);
    if (!r && !n) continue;
    auto need = [&](char const* name, char const* value) -> char const* {
      if (!value)
        throw launch_error(std::string("pipesched: ") + name + " is not set, but other " + f.source +
                           " launch variables are (" + f.rank + ", " + f.size + ", " + f.local + " go together)");
      return value;
    };
    launch_info info;
    info.source = f.source;
    info.rank = detail::parse_count(f.rank, need(f.rank, r));
    info.world_size = detail::parse_count(f.size, need(f.size, n));
    info.local_rank = detail::parse_count(f.local, need(f.local, get(f.local)));
    if (info.world_size == 0) throw launch_error(std::string("pipesched: ") + f.size + "=0: a run needs a process");
    if (info.rank >= info.world_size)
      throw launch_error(std::string("pipesched: ") + f.rank + "=" + std::to_string(info.rank) + " is not below " +
                         f.size + "=" + std::to_string(info.world_size));
    if (info.local_rank >= info.world_size)
      throw launch_error(std::string("pipesched: ") + f.local + "=" + std::to_string(info.local_rank) +
                         " is not below " + f.size + "=" + std::to_string(info.world_size));
    return info;
  }
  throw launch_error("pipesched: no launch variables found (looked for RANK/WORLD_SIZE/LOCAL_RANK, "
                     "OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK, SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID): start the "
                     "processes with torchrun, mpirun or srun, or set RANK, WORLD_SIZE and LOCAL_RANK");
}

/// launch_from_env over this process's environment.
inline launch_info launch_from_environment() {
  return launch_from_env([](char const* name) -> char const* { return std::getenv(name); });
}

/// Writes `n` bytes to `path` so that no reader sees part of them: a temporary file in the
/// same folder, flushed, then renamed over `path`. Throws launch_error naming the file.
inline void write_file_atomically(std::string const& path, void const* data, std::size_t n) {
  std::string const tmp = path + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw launch_error("pipesched: cannot write " + tmp + " (for " + path + "): " + std::strerror(errno));
    out.write(static_cast<char const*>(data), static_cast<std::streamsize>(n));
    out.flush();
    if (!out) throw launch_error("pipesched: writing " + tmp + " (for " + path + ") failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw launch_error("pipesched: cannot rename " + tmp + " to " + path + ": " + ec.message());
  }
}

/// Reads `path` once it exists with exactly `n` bytes, polling every few milliseconds until
/// `deadline` has passed; then launch_error naming the file (and what it found there).
inline void read_file_when_ready(std::string const& path, void* data, std::size_t n,
                                 std::chrono::milliseconds deadline) {
  auto const until = std::chrono::steady_clock::now() + deadline;
  std::string seen = "no such file";
  for (;;) {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (bytes.size() == n) {
        std::memcpy(data, bytes.data(), n);
        return;
      }
      seen = std::to_string(bytes.size()) + " bytes instead of " + std::to_string(n);
    }
    if (std::chrono::steady_clock::now() >= until)
      throw launch_error("pipesched: the bootstrap file " + path + " was not ready after " +
                         std::to_string(deadline.count()) + " ms (" + seen +
                         "): did rank 0 start, and do all ranks see the same file system?");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

/// The shared-file bootstrap: rank 0 writes `n` bytes (NCCL's unique id) to `path`
/// atomically; every other rank waits for them until `deadline`. Use a path no earlier run
/// left behind (put the job id in it): a reader takes the first complete file it finds.
inline void exchange_id_file(std::string const& path, int rank, void* data, std::size_t n,
                             std::chrono::milliseconds deadline) {
  if (rank == 0) write_file_atomically(path, data, n);
  else read_file_when_ready(path, data, n, deadline);
}

/// What a failing rank tells the others: its rank and what failed there.
struct failure_note {
  int rank = -1;
  std::string what;
};

/// Where a failing rank leaves a note that the others read while they wait, so that their
/// exceptions name it. Implementations must be safe to call from several processes.
struct failure_board {
  virtual ~failure_board() = default;
  virtual void post(failure_note const& note) = 0;
  /// The note of the lowest failed rank, if any.
  virtual std::optional<failure_note> poll() = 0;
};

/// A failure board in a shared folder (one file per failed rank: `failed.<rank>`, written
/// atomically). Give every run its own folder; clear() empties it (rank 0, before the run).
class file_failure_board final : public failure_board {
public:
  explicit file_failure_board(std::string folder) : folder_(std::move(folder)) {
    std::error_code ec;
    std::filesystem::create_directories(folder_, ec);
    if (ec) throw launch_error("pipesched: cannot create the failure folder " + folder_ + ": " + ec.message());
  }
  void post(failure_note const& note) override {
    std::string const text = std::to_string(note.rank) + "\n" + note.what;
    write_file_atomically(file_of(note.rank), text.data(), text.size());
  }
  std::optional<failure_note> poll() override {
    std::optional<failure_note> best;
    std::error_code ec;
    for (auto const& e : std::filesystem::directory_iterator(folder_, ec)) {
      std::string const name = e.path().filename().string();
      if (name.rfind("failed.", 0) != 0 || name.find(".tmp.") != std::string::npos) continue;
      std::ifstream in(e.path());
      failure_note n;
      if (!(in >> n.rank)) continue;
      in.get();
      n.what.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      if (!best || n.rank < best->rank) best = std::move(n);
    }
    return best;
  }
  void clear() {
    std::error_code ec;
    for (auto const& e : std::filesystem::directory_iterator(folder_, ec))
      if (e.path().filename().string().rfind("failed.", 0) == 0) std::filesystem::remove(e.path(), ec);
  }
  std::string const& folder() const { return folder_; }

private:
  std::string file_of(int rank) const { return folder_ + "/failed." + std::to_string(rank); }
  std::string folder_;
};

} // namespace pipesched::cuda
