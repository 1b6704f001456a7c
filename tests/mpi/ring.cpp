// np: 4
// Proves the MPI wiring: every rank passes its id around a ring; each must receive its
// left neighbour's id, and the ring's sum must reach every rank.
#include <mpi.h>

#include <cstdio>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int const right = (rank + 1) % size, left = (rank + size - 1) % size;

  int got = -1;
  MPI_Sendrecv(&rank, 1, MPI_INT, right, 0, &got, 1, MPI_INT, left, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  int bad = got != left ? 1 : 0;

  // Pass a running sum once around the ring: rank 0 starts, the last rank sends it home.
  int sum = 0;
  if (rank == 0) {
    sum = rank;
    if (size > 1) {
      MPI_Send(&sum, 1, MPI_INT, right, 1, MPI_COMM_WORLD);
      MPI_Recv(&sum, 1, MPI_INT, left, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
  } else {
    MPI_Recv(&sum, 1, MPI_INT, left, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    sum += rank;
    MPI_Send(&sum, 1, MPI_INT, right, 1, MPI_COMM_WORLD);
  }
  MPI_Bcast(&sum, 1, MPI_INT, 0, MPI_COMM_WORLD);
  bad += sum != size * (size - 1) / 2 ? 1 : 0;

  int total_bad = 0;
  MPI_Allreduce(&bad, &total_bad, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) std::printf("mpi ring: %d ranks, %s\n", size, total_bad == 0 ? "OK" : "FAILED");
  MPI_Finalize();
  return total_bad == 0 ? 0 : 1;
}
