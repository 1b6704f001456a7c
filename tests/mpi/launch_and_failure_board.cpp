// np: 3
// The launch pieces of the NCCL transport across real processes (no GPU needed):
// (1) launch_from_environment() under mpiexec reads Open MPI's variables: rank and size
//     equal MPI's, the local rank equals the rank in the shared-memory split;
// (2) the shared-file bootstrap: rank 0 writes a 128-byte id (atomically), ranks 1 and 2
//     read the same bytes;
// (3) the MPI failure board: rank 1 posts a note; ranks 0 and 2 find it by polling
//     (within 10 s), naming rank 1 with its text; rank 1 sees its own note.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "pipesched/cuda/launch.hpp"
#include "pipesched/cuda/mpi_failure_board.hpp"
#include "mpi_main.hpp"

using namespace pipesched;

int main(int argc, char** argv) {
  return mpi_test::run(argc, argv, "mpi.launch_and_failure_board", 0, [](int rank, int size, std::string&) {
    int failures = 0;
    auto fail = [&](char const* what) {
      std::printf("rank %d FAILED: %s\n", rank, what);
      ++failures;
    };
    // (1)
    try {
      cuda::launch_info const who = cuda::launch_from_environment();
      MPI_Comm local;
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
      int local_rank = -1;
      MPI_Comm_rank(local, &local_rank);
      MPI_Comm_free(&local);
      if (who.rank != rank || who.world_size != size || who.local_rank != local_rank) fail("launch variables");
      std::printf("rank %d: from %s: rank %d of %d, local rank %d\n", rank, who.source, who.rank, who.world_size,
                  who.local_rank);
    } catch (std::exception const& e) {
      fail(e.what());
    }
    // (2)
    {
      long stamp = rank == 0 ? static_cast<long>(std::chrono::steady_clock::now().time_since_epoch().count()) : 0;
      MPI_Bcast(&stamp, 1, MPI_LONG, 0, MPI_COMM_WORLD);
      std::string const path =
          (std::filesystem::temp_directory_path() / ("pipesched_idfile_" + std::to_string(stamp))).string();
      unsigned char id[128];
      for (int k = 0; k < 128; ++k) id[k] = rank == 0 ? static_cast<unsigned char>(k * 5 + 1) : 0;
      try {
        cuda::exchange_id_file(path, rank, id, sizeof id, std::chrono::seconds(10));
        for (int k = 0; k < 128; ++k)
          if (id[k] != static_cast<unsigned char>(k * 5 + 1)) {
            fail("the id read differs");
            break;
          }
      } catch (std::exception const& e) {
        fail(e.what());
      }
      MPI_Barrier(MPI_COMM_WORLD);
      if (rank == 0) std::filesystem::remove(path);
    }
    // (3)
    {
      cuda::mpi_failure_board board;
      if (board.poll()) fail("a note before anyone posted");
      MPI_Barrier(MPI_COMM_WORLD);
      if (rank == 1) board.post({1, "rank 1: F of stage 1, micro-batch 2 threw: injected"});
      auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      std::optional<cuda::failure_note> note;
      while (!(note = board.poll()) && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (!note) fail("no note within 10 s");
      else if (note->rank != 1 || note->what != "rank 1: F of stage 1, micro-batch 2 threw: injected")
        fail(("a wrong note: " + note->what).c_str());
      MPI_Barrier(MPI_COMM_WORLD);
    }
    return failures;
  });
}
