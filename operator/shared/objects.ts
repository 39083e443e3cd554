/** Reading objects the way every reconciler needs: a missing object is `undefined`, not an error. */
import { K8s, type GenericClass } from "kubernetes-fluent-client";
import { httpStatusOf } from "./errors.js";

/** Gets one namespaced object; undefined when it does not exist. */
export async function getOrUndefined<T extends GenericClass>(
  model: T,
  namespace: string,
  name: string,
): Promise<InstanceType<T> | undefined> {
  try {
    return await K8s(model).InNamespace(namespace).Get(name);
  } catch (error) {
    if (httpStatusOf(error) === 404) return undefined;
    throw new Error(`reading ${model.name} ${namespace}/${name}`, { cause: error });
  }
}
