/** Types of build-wasm.mjs (the wasm build script, also used by the byte-for-byte test). */
export declare const SOURCE: string;
export declare const BINARY_MODULE: string;
export declare function compileKernels(): Promise<Buffer>;
export declare function binaryModuleText(bytes: Buffer): string;
