// @creditflow/producer: what a feature service imports to send usage and credit commands to
// creditflow. The only public door of the package; the Kafka plumbing it sends through is
// @creditflow/kafka's.
export { PRODUCER_ERROR_CODES, ProducerError, type ProducerErrorCode } from "./errors.ts";
export { DEFAULT_LIMITS, type ProducerLimits, type ProducerOptions } from "./options.ts";
export { type Acknowledged, CreditProducer } from "./producer.ts";
