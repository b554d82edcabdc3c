// Runs the exported model once with every input set to zero and prints its decision.
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "InlinerSizeModel.h"

int main() {
  llvm::InlinerSizeModel model;
  for (int i = 0; i < model.num_args(); ++i)
    std::memset(model.arg_data(i), 0, model.arg_size(i));
  if (!model.Run()) {
    std::fprintf(stderr, "InlinerSizeModel::Run failed\n");
    return 1;
  }
  const int result = model.LookupResultIndex("fetch_inlining_decision");
  if (result < 0) {
    std::fprintf(stderr, "the model has no fetch_inlining_decision output\n");
    return 1;
  }
  const auto decision = *static_cast<const int64_t *>(model.result_data(result));
  std::printf("inputs: %d, decision at all-zero features: %lld\n", model.num_args(),
              static_cast<long long>(decision));
  return decision == 0 || decision == 1 ? 0 : 1;
}
