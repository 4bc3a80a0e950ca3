// The umbrella: one import for the C boundary, the tool and the tests. The layers are separate
// targets (Package.swift), each importing only those below it.
@_exported import DiffAttnKernels
@_exported import DiffAttnModule
@_exported import DiffAttnProcessors
@_exported import DiffAttnModels
@_exported import DiffAttnHooks
@_exported import DiffAttnParallel
