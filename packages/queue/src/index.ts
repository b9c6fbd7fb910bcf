export { connectRedis, DEFAULT_QUEUE } from "./connection.js";
export { decodeJobError, encodeJobError, type LabelJobData, labelJobId } from "./jobs.js";
export { labelThroughQueue, type QueueLabelOptions, type QueueLabelSummary } from "./producer.js";
export { LabelWorker, type LabelWorkerOptions } from "./worker.js";
