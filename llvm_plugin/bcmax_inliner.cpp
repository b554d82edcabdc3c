//===- bcmax_inliner.cpp - LLVM pass plugin: ML inliner with our model ----===//
//
// Loaded by a stock clang with `-fpass-plugin=libbcmax_inliner.so`. It
// registers a PluginInlineAdvisorAnalysis, which the inliner consults before
// any built-in advisor. The factory builds LLVM's own MLInlineAdvisor around a
// ReleaseModeModelRunner of the AOT-compiled model (bcmax_model.cpp), so the
// features, the decisions and the bookkeeping are exactly those of
// `-enable-ml-inliner=release` in an LLVM built with that model.
//
//===----------------------------------------------------------------------===//

#include "bcmax_model.h"

#include "llvm/Analysis/AssumptionCache.h"
#include "llvm/Analysis/BlockFrequencyInfo.h"
#include "llvm/Analysis/InlineAdvisor.h"
#include "llvm/Analysis/InlineCost.h"
#include "llvm/Analysis/InlineModelFeatureMaps.h"
#include "llvm/Analysis/MLInlineAdvisor.h"
#include "llvm/Analysis/OptimizationRemarkEmitter.h"
#include "llvm/Analysis/ProfileSummaryInfo.h"
#include "llvm/Analysis/TargetLibraryInfo.h"
#include "llvm/Analysis/TargetTransformInfo.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Plugins/PassPlugin.h"

using namespace llvm;

namespace {

constexpr const char *PluginName = "bcmax_inliner";

/// The module analysis manager of the pipeline being built on this thread. The
/// advisor factory only receives the function analysis manager, but
/// MLInlineAdvisor needs the module one. A pipeline registers its analyses and
/// runs on one thread (clang: once per compile; LTO backends: once per thread).
thread_local ModuleAnalysisManager *PipelineMAM = nullptr;

/// LLVM's manual heuristic, as the built-in advisors compute it: the decision
/// the ML advisor reports as `inlining_default` and uses for
/// `-ml-inliner-skip-policy`.
bool getHeuristicAdvice(CallBase &CB, FunctionAnalysisManager &FAM,
                        const InlineParams &Params) {
  Function &Caller = *CB.getCaller();
  Function &Callee = *CB.getCalledFunction();
  ProfileSummaryInfo *PSI =
      FAM.getResult<ModuleAnalysisManagerFunctionProxy>(Caller)
          .getCachedResult<ProfileSummaryAnalysis>(*CB.getModule());
  auto &ORE = FAM.getResult<OptimizationRemarkEmitterAnalysis>(Caller);
  auto &CalleeTTI = FAM.getResult<TargetIRAnalysis>(Callee);
  auto GetAssumptionCache = [&](Function &F) -> AssumptionCache & {
    return FAM.getResult<AssumptionAnalysis>(F);
  };
  auto GetTLI = [&](Function &F) -> const TargetLibraryInfo & {
    return FAM.getResult<TargetLibraryAnalysis>(F);
  };
  auto GetBFI = [&](Function &F) -> BlockFrequencyInfo & {
    return FAM.getResult<BlockFrequencyAnalysis>(F);
  };
  auto GetInlineCost = [&](CallBase &Call) {
    return getInlineCost(Call, Params, CalleeTTI, GetAssumptionCache, GetTLI,
                         GetBFI, PSI);
  };
  return shouldInline(CB, CalleeTTI, GetInlineCost, ORE,
                      Params.EnableDeferral.value_or(false))
      .has_value();
}

/// Reports why the advisor cannot be built as a compiler error (clang then
/// fails the compile with that message instead of inlining with a wrong model).
InlineAdvisor *rejectModel(Module &M, const Twine &Why) {
  M.getContext().emitError(Twine(PluginName) + ": " + Why);
  return nullptr;
}

InlineAdvisor *createAdvisor(Module &M, FunctionAnalysisManager &FAM,
                             InlineParams Params, InlineContext) {
  ModuleAnalysisManager *MAM = PipelineMAM;
  auto *FAMProxy =
      MAM ? MAM->getCachedResult<FunctionAnalysisManagerModuleProxy>(M)
          : nullptr;
  if (!FAMProxy || &FAMProxy->getManager() != &FAM)
    return rejectModel(M, "the inliner ran outside the pass pipeline this "
                          "plugin registered with");

  const std::string Mismatch = bcmax::describeModelMismatch(
      MLInlineAdvisor::getInitialFeatureMap(), DecisionName);
  if (!Mismatch.empty())
    return rejectModel(
        M, "the model compiled into this plugin (built for LLVM " LLVM_VERSION_STRING
           ") does not match the features of this compiler's inliner:\n" +
               Mismatch +
               "Re-export the policy for this compiler "
               "(python -m compiler_opt.tools.export_model).");

  auto GetModelRunner = [&M](const std::vector<TensorSpec> &Features) {
    return bcmax::createModelRunner(M.getContext(), Features, DecisionName);
  };
  auto GetDefaultAdvice = [&FAM, Params](CallBase &CB) {
    return getHeuristicAdvice(CB, FAM, Params);
  };
  return new MLInlineAdvisor(M, *MAM, GetModelRunner, GetDefaultAdvice);
}

void registerCallbacks(PassBuilder &PB) {
  PB.registerAnalysisRegistrationCallback([](ModuleAnalysisManager &MAM) {
    PipelineMAM = &MAM;
    MAM.registerPass([] { return PluginInlineAdvisorAnalysis(createAdvisor); });
  });
}

} // namespace

extern "C" LLVM_ATTRIBUTE_WEAK LLVM_ATTRIBUTE_VISIBILITY_DEFAULT
    ::llvm::PassPluginLibraryInfo
    llvmGetPassPluginInfo() {
  return {LLVM_PLUGIN_API_VERSION, PluginName, LLVM_VERSION_STRING,
          registerCallbacks};
}
