// expect: a backward pass comes before its own forward on the same rank
// An MPI executor of a table that runs a backward before its forward stops the build,
// though nobody names S::valid.
#include <pipesched/host/mpi.hpp>
#include <pipesched/schedules/custom.hpp>
struct early {
  static constexpr std::string_view text = "0F0,0B0\n1B0,1F0";
};
struct stage {
  template <class St> void forward(St, pipesched::io const&) {}
  template <class St> void backward(St, pipesched::io const&) {}
};
int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  stage f;
  pipesched::mpi::executor<pipesched::custom<early>> ex(MPI_COMM_WORLD, {.slot_bytes = 8});
  ex.run(f);
  MPI_Finalize();
}
