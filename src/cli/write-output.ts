export { writeJsonAtomic } from '../engine/io/json-file';
